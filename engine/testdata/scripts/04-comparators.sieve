require ["comparator-i;octet", "comparator-i;ascii-numeric", "comparator-i;unicode-casemap", "relational"];
if header :comparator "i;octet" :is "X-Case" "MiXeD" { keep; }
if header :comparator "i;ascii-casemap" :contains "subject" "HELLO" { keep; }
if header :comparator "i;unicode-casemap" :is "subject" "GRÜSSE" { keep; }
if header :value "gt" :comparator "i;ascii-numeric" "X-Spam-Score" "5" { discard; }
