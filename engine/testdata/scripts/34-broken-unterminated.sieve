require "fileinto";
if header :contains "subject" "unterminated {
    fileinto "x";
}
