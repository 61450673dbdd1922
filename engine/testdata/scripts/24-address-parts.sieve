require ["fileinto", "envelope", "subaddress"];
if address :all :is ["from", "sender", "reply-to", "resent-from"] "x@example.org" { keep; }
if address :domain :matches "to" "*.example.*" { fileinto "Sub"; }
if address :localpart :contains "cc" "admin" { discard; }
if envelope :all :is "from" "" { fileinto "Bounces"; }
if address :user :is "delivered-to" "bob" { keep; }
