require ["duplicate", "fileinto"];
if duplicate :seconds 3600 :header "message-id" { discard; }
