require ["variables", "envelope"];
set "a" "${envelope.from}";
set "b" "${foo.bar}";
if string :is "${a}" "" { keep; }
