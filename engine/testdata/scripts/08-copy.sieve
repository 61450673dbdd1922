require ["copy", "fileinto"];
redirect :copy "archive@example.net";
fileinto :copy "Archive";
