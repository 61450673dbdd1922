require ["imap4flags", "fileinto"];
setflag "\\Seen";
addflag ["\\Flagged", "$Important"];
removeflag "\\Seen";
if hasflag :contains "$Important" {
    fileinto :flags ["\\Answered"] "Important";
}
keep :flags "\\Deleted";
