require ["fileinto", "imap4flags", "relational", "comparator-i;ascii-numeric", "variables"];
if header :matches "X-Spam-Score" "*" {
    set "score" "${1}";
}
if string :value "ge" :comparator "i;ascii-numeric" "${score}" "10" {
    discard;
    stop;
} elsif string :value "ge" :comparator "i;ascii-numeric" "${score}" "5" {
    addflag "Junk";
    fileinto "Junk";
    stop;
}
