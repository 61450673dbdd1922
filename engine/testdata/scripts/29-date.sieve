require ["date", "relational", "fileinto"];
if currentdate :value "ge" "hour" "18" { fileinto "Evening"; }
if date :is "date" "year" "2024" { keep; }
