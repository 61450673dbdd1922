require ["variables", "fileinto"];
set "text" text:
first line
..dot-stuffed
.
;
if string :contains "${text}" "first" { fileinto "Multi"; }
