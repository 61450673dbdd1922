require ["variables", "fileinto"];
if header :matches "List-Id" "*<*.*>*" {
    set :lower "list" "${2}";
    set :upperfirst "nice" "${list}";
    set :length "len" "${list}";
    set :quotewildcard "q" "a*b?c";
    fileinto "Lists/${nice}";
}
set "empty" "";
if string :is "${empty}" "" { keep; }
