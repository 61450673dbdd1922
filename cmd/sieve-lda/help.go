package main

const usageText = `sieve-lda: deliver one message (on stdin) into a user's Maildir++, filtered
by the user's active Sieve script. A drop-in replacement for dovecot-lda.

Usage: sieve-lda [-c CONFIG] [-d RECIPIENT] [-f SENDER] [-a ORIGINAL] [-m MAILBOX]
                 [-e] [-p FILE]

  -c CONFIG     sieved configuration file (TOML); default: built-in defaults
  -d RECIPIENT  final recipient, e.g. alice+lists@example.org (or a bare user
                with [lda] default_domain); default: $RECIPIENT from the MTA
  -f SENDER     envelope sender ("" or "<>" for the null sender); default:
                $SENDER from the MTA, else the Return-Path header
  -a ORIGINAL   original recipient (before aliasing); default:
                $ORIGINAL_RECIPIENT when set. As with dovecot-lda, this is
                what the script's envelope "to" tests when given
  -m MAILBOX    mailbox for keep instead of INBOX (e.g. "Lists/Go")
  -e            when the script rejects, print the reason and exit 77 so the
                MTA bounces, instead of sending a rejection notice ourselves
  -p FILE       read the message from FILE instead of stdin
  -r ADDRESS    final recipient, used when -d is absent; -o SETTING and -k
                are accepted for dovecot-lda compatibility and ignored
  --help        this text

Exit status (sysexits): 0 delivered (or discarded/redirected on purpose);
64 bad usage; 66 -p FILE unreadable; 67 unknown user; 75 temporary failure
(disk full, read-only or unreachable mailbox, timeout, and, as with
dovecot-lda, an unusable configuration file: the MTA must retry); 77
rejected by the script with -e. The reason is
one line on stderr, which MTAs copy into their logs and bounces; the
delivery log goes to syslog (mail facility), or where [lda] log_file says.

A user is known when their Maildir ([lda] mail_dir, default
/var/vmail/<domain>/<user>) exists, or, with [lda] users_file, when listed
there (the Maildir is then created). When the mail store itself is missing
(mail_dir's part before the first placeholder, e.g. an unmounted /var/vmail)
the answer is 75, not 67. alice+lists@ and alice-lists@ deliver
to alice (separators: [lda] subaddress_separators); the script still sees
the whole address as envelope "to", so :detail works.

Exim (4.94+ taint checks): the transport passes nothing tainted on the
command line. Exim puts the envelope into the pipe's environment (RECIPIENT
is the complete address, +detail included; SENDER is empty for a bounce),
which sieve-lda reads when -d/-f are absent. The router's dsearch lookups
de-taint the domain and user ($domain_data, $local_part_data) for any other
use, and make "known user" mean "has a Maildir", as sieve-lda does:

  begin routers
  sieve_user:
    driver = accept
    domains = dsearch;/var/vmail
    local_parts = dsearch;/var/vmail/$domain_data
    local_part_suffix = +* : -*
    local_part_suffix_optional
    transport = sieve_lda

  begin transports
  sieve_lda:
    driver = pipe
    command = /usr/local/bin/sieve-lda -c /etc/sieved/sieved.toml -e
    # no mbox "From " line (sieve-lda would strip one anyway)
    message_prefix =
    message_suffix =
    return_path_add
    delivery_date_add
    envelope_to_add
    # defer and retry on the temporary sysexits codes, bounce on the others
    temp_errors = 64 : 69 : 70 : 71 : 72 : 73 : 74 : 75 : 78
    # put sieve-lda's one-line reason into the log (deferrals too) and
    # the bounce
    log_defer_output
    log_fail_output
    return_fail_output
    user = vmail
    group = vmail

  If you prefer explicit arguments, use de-tainted values only, e.g.
  -d $local_part_data@$domain_data (scripts then see no +detail).
  A transport "user" set from a non-default Exim config needs that config
  listed in /etc/exim4/trusted_configs.

Postfix, as a pipe(8) transport (master.cf; use it with
virtual_transport = sieve-lda, and sieve-lda_destination_recipient_limit = 1
in main.cf):

  sieve-lda unix -  n  n  -  -  pipe
    flags=DRh null_sender= user=vmail:vmail argv=/usr/local/bin/sieve-lda
    -c /etc/sieved/sieved.toml -e -f ${sender} -a ${original_recipient}
    -d ${recipient}

Postfix, as local(8)'s mailbox_command (main.cf; local(8) exports SENDER,
RECIPIENT and ORIGINAL_RECIPIENT, so no arguments are needed):

  mailbox_command = /usr/local/bin/sieve-lda -c /etc/sieved/sieved.toml -e

pipe(8) expands ${sender} of a bounce to "MAILER-DAEMON" unless null_sender=
is set empty as above; sieve-lda would then take it for a real sender and
send rejection notices to it. Postfix defers on 75 and bounces on other
non-zero codes.
`
