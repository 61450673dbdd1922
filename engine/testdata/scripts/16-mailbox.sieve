require ["mailbox", "fileinto"];
if mailboxexists "Archive/2024" { fileinto "Archive/2024"; }
fileinto :create "New/Folder";
