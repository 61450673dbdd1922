#!/bin/sh
# Copy Sieve scripts from Dovecot Pigeonhole's default per-user layout
#   <homes>/<domain>/<user>/sieve/<name>.sieve
#   <homes>/<domain>/<user>/.dovecot.sieve -> sieve/<name>.sieve  (active)
# into sieved's store
#   <root>/<domain>/<user>/<name>.sieve
#   <root>/<domain>/<user>/active -> <name>.sieve
#
# Usage: pigeonhole-import.sh HOMES ROOT OWNER[:GROUP]
#   e.g. pigeonhole-import.sh /var/vmail /var/lib/sieve vmail:vmail
#
# The last two path components of each home are taken as domain and user
# (Dovecot's mail_home = /var/vmail/%d/%n). Pigeonhole's compiled .svbin
# files and its tmp/ directory are left behind; scripts whose name starts
# with "." are skipped (sieved refuses such names); an active script that
# is a regular file instead of a link is imported as "dovecot". Existing
# files under ROOT are never overwritten, so the script can be re-run.
# Each user directory gets the vacation/ directory sieved would create:
# with a GROUP, owned by it and mode 2770 (setgid), so sieve-lda running as
# the MTA's user in that group can keep vacation state there; without one,
# mode 0700 (sieved and the delivery run as OWNER).
# Set SIEVE_DIR / ACTIVE_LINK when your "sieve =" setting uses other names.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 HOMES ROOT OWNER[:GROUP]" >&2; exit 64; }
homes=$1 root=$2 owner=$3
sieve_dir=${SIEVE_DIR:-sieve}
active_link=${ACTIVE_LINK:-.dovecot.sieve}
# install(1) ownership options; -g only when a GROUP was given
own="-o ${owner%%:*}"
case $owner in *:*) own="$own -g ${owner#*:}" ;; esac

for home in "$homes"/*/*; do
  [ -d "$home/$sieve_dir" ] || [ -e "$home/$active_link" ] || continue
  user=$(basename "$home")
  domain=$(basename "$(dirname "$home")" | tr 'A-Z' 'a-z')  # sieved lowercases domains
  dst=$root/$domain/$user
  install -d -m 0750 $own "$root/$domain" "$dst"
  if [ ! -e "$dst/vacation" ]; then
    case $owner in
      *:*) install -d -m 2770 $own "$dst/vacation" ;;
      *) install -d -m 0700 $own "$dst/vacation" ;;
    esac
  fi
  n=0
  for f in "$home/$sieve_dir"/*.sieve; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    if [ -e "$dst/$name" ]; then echo "$domain/$user: $name exists, kept" >&2; continue; fi
    install -m 0640 $own "$f" "$dst/$name"
    n=$((n + 1))
  done
  # dot files (.hidden.sieve) are not matched by *.sieve: report them
  for f in "$home/$sieve_dir"/.*.sieve; do
    [ -f "$f" ] && echo "$domain/$user: $(basename "$f") skipped (name starts with \".\")" >&2
  done
  active=""
  if [ -L "$home/$active_link" ]; then
    active=$(basename "$(readlink "$home/$active_link")")
  elif [ -f "$home/$active_link" ]; then
    active=dovecot.sieve
    [ -e "$dst/$active" ] || install -m 0640 $own "$home/$active_link" "$dst/$active"
  fi
  if [ -n "$active" ] && [ ! -e "$dst/active" ] && [ ! -L "$dst/active" ]; then
    if [ -f "$dst/$active" ]; then
      ln -s "$active" "$dst/active"
      chown -h "$owner" "$dst/active"
    else
      echo "$domain/$user: active script $active not found, nothing activated" >&2
    fi
  fi
  echo "$domain/$user: $n script(s)${active:+, active: ${active%.sieve}}"
done
