fileinto "NoRequire";
if envelope :is "from" "a" { keep; }
set "x" "${envelope.from}";
