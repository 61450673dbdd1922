#!/usr/bin/env bash
# Deliveries per second, one process per message as an MTA runs them:
# sieve-lda against Dovecot's dovecot-lda (the reference), same 30-rule
# script, same ~19 KB message, both fsyncing. Usage:
#   bash bench/lda-throughput.sh [MESSAGES]     (default 300)
# Needs dovecot-sieve installed (scripts/test.sh installs it). Everything
# lives in a temp dir that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
W=$(mktemp -d /tmp/sieved-bench.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
chmod 755 "$W"

go build -o "$W/sieve-lda" ./cmd/sieve-lda

# A 30-rule script typical of a mailing-list user.
{
  echo 'require ["fileinto", "envelope", "imap4flags", "variables", "subaddress"];'
  for i in $(seq 1 27); do
    echo "if header :contains \"list-id\" \"list$i.example.net\" { fileinto \"Lists/l$i\"; stop; }"
  done
  echo 'if address :domain :is "from" "spam.example" { discard; stop; }'
  echo 'if header :matches "subject" "*[URGENT]*" { addflag "\\Flagged"; }'
  echo 'if envelope :detail "to" "news" { fileinto "News"; stop; }'
} > "$W/rules.sieve"

# ~19 KB message that matches no rule until the end.
{
  printf 'Return-Path: <bob@remote.example>\nFrom: Bob <bob@remote.example>\nTo: alice@example.org\n'
  printf 'Subject: quarterly numbers\nMessage-ID: <bench@remote.example>\nDate: Wed, 25 Nov 2026 10:00:00 +0000\n'
  printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n'
  for i in $(seq 1 300); do echo "line $i of a message body that is long enough to be realistic ......"; done
} > "$W/msg.eml"

. bench/lda-setup.sh
lda_setup

run() { # name command...
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  for _ in $(seq 1 "$N"); do "$@" < "$W/msg.eml" 2>>"$W/$name.stderr" || { echo "$name failed:"; tail -n 5 "$W/$name.stderr"; exit 1; }; done
  end=$(date +%s.%N)
  awk -v n="$N" -v s="$start" -v e="$end" -v name="$name" \
    'BEGIN { printf "%-12s %5d messages in %6.2f s: %7.1f messages/s, %5.2f ms/message\n", name, n, e-s, n/(e-s), 1000*(e-s)/n }'
}

run sieve-lda "${AS_MAIL[@]}" "$W/sieve-lda" -c "$W/sieved.toml" -d alice@example.org -f bob@remote.example
run dovecot-lda "${AS_MAIL[@]}" env HOME="$W/vmail-dovecot/example.org/alice" USER=alice /usr/lib/dovecot/dovecot-lda -c "$W/dovecot/dovecot.conf" -f bob@remote.example

ours=$(find "$W/vmail-ours" -type f -path '*/new/*' | wc -l)
theirs=$(find "$W/vmail-dovecot" -type f -path '*/new/*' | wc -l)
echo "delivered: sieve-lda $ours, dovecot-lda $theirs (want $N each)"
[ "$ours" -eq "$N" ] && [ "$theirs" -eq "$N" ]
