require ["subaddress", "envelope", "fileinto", "variables"];
if envelope :detail :matches "to" "*" {
    if string :is "${1}" "" { stop; }
    fileinto "plus/${1}";
}
if address :user :is "to" "alice" { keep; }
