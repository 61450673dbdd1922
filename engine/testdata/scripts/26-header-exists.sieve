if exists ["list-id", "list-unsubscribe", "precedence"] { keep; }
if not exists "message-id" { discard; }
if header :is "precedence" ["bulk", "list", "junk"] { discard; }
