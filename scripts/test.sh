#!/usr/bin/env bash
# The whole test suite: installs the real peers the interoperability tests
# talk to (Debian packages), then runs formatting, vet, unit, race, fuzz-seed
# and interoperability tests. README's second command; .ci/run calls it.
#
# Needs root for apt-get on a fresh machine; on a machine that already has
# every peer it installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS=(dovecot-managesieved dovecot-sieve dovecot-imapd sieve-connect
       python3-sievelib php-net-sieve php-cli exim4-daemon-light swaks openssl)

missing=()
for p in "${PEERS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing test peers: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  # Package install must not start system daemons (dovecot, exim) on
  # well-known ports: the tests start their own instances on high ports.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^third_party/') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== patched go-sieve (third_party) tests"
(cd third_party/go-sieve && go test ./...)

echo "== unit, interoperability and fuzz-seed tests (race detector on)"
export SIEVED_REQUIRE_PEERS=1
go test -race -timeout 25m -count=1 ./...
