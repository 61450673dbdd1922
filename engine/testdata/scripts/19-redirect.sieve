if address :is "from" "list@example.org" {
    redirect "alice@example.net";
    redirect "bob@example.net";
}
