module github.com/foxcpp/go-sieve

go 1.20

require github.com/davecgh/go-spew v1.1.1

require (
	github.com/emersion/go-message v0.18.0 // indirect
	github.com/emersion/go-textwrapper v0.0.0-20200911093747-65d896831594 // indirect
	rsc.io/binaryregexp v0.2.0 // indirect
)
