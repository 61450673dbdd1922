# hash comment
/* bracket
   comment */
require ["fileinto"]; # trailing
if /* inline */ header :is "X-A" "b" { fileinto /* x */ "C"; }
