require ["encoded-character", "fileinto"];
if header :contains "subject" "${hex:4b c3 b6 6c 6e}" {
    fileinto "${unicode:4b f6}ln";
}
