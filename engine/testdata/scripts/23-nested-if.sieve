require "fileinto";
if exists "from" {
  if exists "to" {
    if exists "subject" {
      if header :contains "subject" "a" {
        if header :contains "subject" "b" {
          fileinto "Deep";
        }
      }
    }
  }
}
