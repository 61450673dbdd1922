module github.com/sieved/sieved

go 1.26.0

replace github.com/foxcpp/go-sieve => ./third_party/go-sieve

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/GehirnInc/crypt v0.0.0-20230320061759-8cc1b52080c5 // indirect
	github.com/emersion/go-imap/v2 v2.0.0-beta.8 // indirect
	github.com/emersion/go-maildir v0.6.0 // indirect
	github.com/emersion/go-message v0.18.2 // indirect
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	github.com/emersion/go-smtp v0.25.1 // indirect
	github.com/foxcpp/go-sieve v0.0.0-20260523221512-9ae51b269e52 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	rsc.io/binaryregexp v0.2.0 // indirect
)
