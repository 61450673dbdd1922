# A realistic personal filter: 40 rules of the kinds webmail users write.
require ["fileinto", "envelope", "imap4flags", "variables", "body",
         "relational", "comparator-i;ascii-numeric", "subaddress", "copy"];

# 1-4: spam handling
if header :contains "x-spam-flag" "yes" { fileinto "Junk"; stop; }
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "10" { discard; stop; }
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { addflag "$Junk"; fileinto "Junk"; stop; }
if anyof (header :contains "subject" ["viagra", "casino", "lottery"], address :domain :is "from" "spam.example") { fileinto "Junk"; stop; }

# 5-12: mailing lists by List-Id, folder from the id
if header :matches "list-id" "*<golang-nuts.*>*" { fileinto "Lists/golang"; stop; }
if header :matches "list-id" "*<dovecot.*>*" { fileinto "Lists/dovecot"; stop; }
if header :matches "list-id" "*<debian-user.*>*" { fileinto "Lists/debian"; stop; }
if header :matches "list-id" "*<postfix-users.*>*" { fileinto "Lists/postfix"; stop; }
if header :contains "list-id" "linux-kernel" { fileinto "Lists/lkml"; stop; }
if header :is "x-mailing-list" "sieve@ietf.org" { fileinto "Lists/ietf-sieve"; stop; }
if header :matches "list-id" "*<*.lists.example.org>*" { set :lower "l" "${2}"; fileinto "Lists/${l}"; stop; }
if exists "list-unsubscribe" { set "newsletter" "1"; }

# 13-20: people and domains
if address :is "from" "boss@work.example" { addflag "\\Flagged"; fileinto "Work/Boss"; }
if address :domain :is "from" "work.example" { fileinto "Work"; stop; }
if address :domain :matches "from" "*.bank.example" { addflag "$Important"; fileinto "Finance"; stop; }
if address :localpart :is "from" ["noreply", "no-reply", "donotreply"] { addflag "$Automated"; }
if address :all :is "from" ["mom@family.example", "dad@family.example"] { fileinto "Family"; stop; }
if address :domain :is ["to", "cc"] "school.example" { fileinto "School"; stop; }
if header :contains "from" "GitHub" { fileinto "Notifications/GitHub"; stop; }
if address :is "sender" "notifications@gitlab.example" { fileinto "Notifications/GitLab"; stop; }

# 21-26: envelope and subaddress
if envelope :is "from" "" { fileinto "Bounces"; stop; }
if envelope :domain :is "from" "mailer-daemon.example" { fileinto "Bounces"; stop; }
if envelope :detail :matches "to" "*" { if string :is "${1}" "shop" { fileinto "Shopping"; stop; } }
if envelope :detail :is "to" "travel" { fileinto "Travel"; stop; }
if envelope :localpart :is "to" "postmaster" { fileinto "Admin"; stop; }
if envelope :all :matches "to" "abuse@*" { fileinto "Admin/Abuse"; stop; }

# 27-34: subjects
if header :matches "subject" "[[]JIRA[]] *" { fileinto "Work/Jira"; stop; }
if header :matches "subject" "Invoice *" { fileinto "Finance/Invoices"; stop; }
if header :contains "subject" ["order confirmation", "your order"] { fileinto "Shopping"; stop; }
if header :matches "subject" "Re: *" { set "reply" "1"; }
if header :is "subject" "ping" { discard; stop; }
if header :contains "subject" "urgent" { addflag "\\Flagged"; }
if header :matches "subject" "*newsletter*" { fileinto "Newsletters"; stop; }
if header :count "ge" :comparator "i;ascii-numeric" "received" "20" { fileinto "Suspicious"; stop; }

# 35-36: size
if size :over 10M { fileinto "Large"; stop; }
if allof (size :over 500K, exists "list-id") { discard; stop; }

# 37: one body test
if body :text :contains "quarterly report" { addflag "$Report"; fileinto :copy "Reports"; }

# 38-40: variables and the default
if string :is "${newsletter}" "1" { fileinto "Newsletters"; stop; }
if header :matches "x-original-to" "*@*" { set "dom" "${2}"; }
if string :is "${reply}" "1" { fileinto :flags "\\Seen" "Replies"; stop; }
keep;
