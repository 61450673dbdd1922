require "reject";
if header :contains "subject" "viagra" {
    reject "Go away.
Multi-line reason.
";
}
