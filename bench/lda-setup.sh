# Sourced by the lda-*.sh benchmarks: lays out, under $W, the same user for
# both delivery agents from $W/rules.sieve, and sets AS_MAIL.
#   $W/sieve/example.org/alice/   our store (rules.sieve + active link)
#   $W/sieve-dovecot/             Dovecot's writable copy: it caches its
#                                 compiled active.svbin next to the script,
#                                 as in production
#   $W/sieved.toml, $W/dovecot/dovecot.conf
#   $W/vmail-ours, $W/vmail-dovecot  the two Maildirs
# Both agents run as the unprivileged "mail" user, as an MTA's pipe
# transport runs them (dovecot-lda as root insists on -d and an auth
# service); dovecot-lda delivers without -d for that user, with no auth
# service, which is what a one-process-per-message benchmark wants.
lda_setup() {
  mkdir -p "$W/sieve/example.org/alice" "$W/vmail-ours/example.org/alice" \
    "$W/vmail-dovecot/example.org/alice" "$W/dovecot" "$W/sieve-dovecot"
  cp "$W/rules.sieve" "$W/sieve/example.org/alice/rules.sieve"
  ln -s rules.sieve "$W/sieve/example.org/alice/active"
  cp "$W/rules.sieve" "$W/sieve-dovecot/rules.sieve"
  ln -s rules.sieve "$W/sieve-dovecot/active"
  cat > "$W/sieved.toml" <<CONF
[storage]
root = "$W/sieve"
[lda]
mail_dir = "$W/vmail-ours/{domain}/{user}"
CONF
  cat > "$W/dovecot/dovecot.conf" <<CONF
base_dir = $W/dovecot/run
state_dir = $W/dovecot/state
log_path = $W/dovecot/log
info_log_path = $W/dovecot/log
protocols =
mail_location = maildir:$W/vmail-dovecot/example.org/alice
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = yes
mail_fsync = always
protocol lda {
  mail_plugins = sieve
}
plugin {
  sieve = file:$W/sieve-dovecot;active=$W/sieve-dovecot/active
  sieve_extensions = +vacation-seconds
}
CONF
  chown -R mail:mail "$W/vmail-ours" "$W/vmail-dovecot" "$W/dovecot" "$W/sieve-dovecot"
  AS_MAIL=(setpriv --reuid=mail --regid=mail --clear-groups)
}
