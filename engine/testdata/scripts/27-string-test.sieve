require ["variables", "relational", "comparator-i;ascii-numeric"];
set "n" "42";
if string :value "ge" :comparator "i;ascii-numeric" "${n}" "40" { keep; }
if string :count "eq" :comparator "i;ascii-numeric" ["a", "b", ""] "2" { discard; }
if string :matches "${n}" "4?" { keep; }
