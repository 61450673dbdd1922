#!/usr/bin/env bash
# Peak memory (maximum resident set size, /usr/bin/time -v) of one delivery
# of a large message: sieve-lda against Dovecot's dovecot-lda, same script
# (header and size tests), both fsyncing. The issue's bar: within 2x of
# dovecot-lda's ~6 MB for 50 MB (about 12 MB). Usage:
#   bash bench/lda-memory.sh [MEGABYTES]     (default 50)
# Needs dovecot-sieve (scripts/test.sh installs it) and /usr/bin/time
# (package "time"). Everything lives in a temp dir removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-50}
W=$(mktemp -d /tmp/sieved-bench-mem.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
chmod 755 "$W"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }

go build -o "$W/sieve-lda" ./cmd/sieve-lda

cat > "$W/rules.sieve" <<'SIEVE'
require ["fileinto", "imap4flags"];
if header :contains "subject" "big" { addflag "\\Flagged"; }
if size :over 10M { fileinto "Large"; stop; }
SIEVE

# MB megabytes of 65-byte lines after a small header.
{
  printf 'Return-Path: <bob@remote.example>\nFrom: Bob <bob@remote.example>\nTo: alice@example.org\n'
  printf 'Subject: a big attachment\nMessage-ID: <big@remote.example>\nMIME-Version: 1.0\n'
  printf 'Content-Type: text/plain; charset=us-ascii\n\n'
  head -c $((MB * 1024 * 1024)) /dev/zero | tr '\0' 'x' | fold -w 64
} > "$W/msg.eml"

. bench/lda-setup.sh
lda_setup

measure() { # name command...
  local name=$1; shift
  /usr/bin/time -v -o "$W/$name.time" "$@" < "$W/msg.eml" 2>>"$W/$name.stderr" || { echo "$name failed:"; tail -n 5 "$W/$name.stderr"; exit 1; }
  awk -v name="$name" -F': ' '/Maximum resident set size/ { rss=$2 } /Elapsed \(wall clock\)/ { wall=$2 }
    END { printf "%-12s peak RSS %6.1f MB, wall %s\n", name, rss/1024, wall }' "$W/$name.time"
}

echo "message: $(du -m "$W/msg.eml" | cut -f1) MB"
measure sieve-lda "${AS_MAIL[@]}" "$W/sieve-lda" -c "$W/sieved.toml" -d alice@example.org -f bob@remote.example
measure dovecot-lda "${AS_MAIL[@]}" env HOME="$W/vmail-dovecot/example.org/alice" USER=alice /usr/lib/dovecot/dovecot-lda -c "$W/dovecot/dovecot.conf" -f bob@remote.example
ours=$(find "$W/vmail-ours" -type f \( -path '*/.Large/new/*' -o -path '*/.Large/cur/*' \) | wc -l)
theirs=$(find "$W/vmail-dovecot" -type f \( -path '*/.Large/new/*' -o -path '*/.Large/cur/*' \) | wc -l)
echo "filed into Large: sieve-lda $ours, dovecot-lda $theirs (want 1 each)"
[ "$ours" -eq 1 ] && [ "$theirs" -eq 1 ]
