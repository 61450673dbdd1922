require ["editheader"];
addheader "X-Sieve" "processed";
deleteheader :index 1 "X-Spam";
