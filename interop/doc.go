// Package interop holds tests that talk to real peer programs: ManageSieve
// clients (sieve-connect, python3-sievelib, PHP Net_Sieve), Dovecot's
// managesieved, imapd and sieve-test, and Exim. scripts/test.sh installs
// them; with SIEVED_REQUIRE_PEERS=1 a missing peer fails the test instead of
// skipping it.
package interop
