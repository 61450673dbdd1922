if anyof (exists "x-spam-flag", header :is "x-spam-status" "yes", not exists "from") {
    discard;
} elsif allof (address :domain :is "from" "example.com", size :under 100K, true) {
    keep;
} else {
    if false { discard; }
}
