require ["envelope", "fileinto"];
if envelope :is "from" "boss@example.com" {
    fileinto "Boss";
} elsif envelope :domain :is "to" "example.org" {
    keep;
} elsif envelope :localpart :matches "from" "*-bounces" {
    discard;
}
