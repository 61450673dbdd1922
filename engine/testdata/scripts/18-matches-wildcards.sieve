require ["fileinto", "variables"];
if header :matches "subject" ["*[??]*", "Re: *", "\\*literal\\?"] {
    fileinto "Matched";
}
if address :matches :localpart "from" "a*b?c*" { keep; }
if header :matches "X-Mailer" "*" { set "mailer" "${0}"; }
