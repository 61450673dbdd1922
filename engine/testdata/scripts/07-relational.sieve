require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :count "ge" :comparator "i;ascii-numeric" "received" "5" {
    fileinto "Many-Hops";
}
if address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "10" {
    discard;
}
if header :value "lt" :comparator "i;ascii-casemap" "subject" "m" { keep; }
