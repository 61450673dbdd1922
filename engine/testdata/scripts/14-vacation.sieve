require "vacation";
if header :contains "subject" "urgent" { keep; }
vacation :days 7 :subject "Away" :from "me@example.org" :addresses ["me@example.org", "alias@example.org"] :handle "away-1" "I am away until Monday.";
