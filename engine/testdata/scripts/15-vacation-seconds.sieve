require ["vacation-seconds", "variables"];
set "reason" "Back soon";
vacation :seconds 3600 :mime "Content-Type: text/plain; charset=utf-8

${reason}
";
