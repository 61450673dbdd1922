require ["environment", "variables", "fileinto"];
if environment :is "location" "MDA" {
    if environment :matches "domain" "*" { set "dom" "${1}"; }
    if environment :contains "phase" "during" { fileinto "Seen-by-${dom}"; }
}
if environment :is "name" "sieved" { keep; }
