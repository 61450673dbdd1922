package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/sieved/sieved/auth"
)

// Auth is the [auth] section: how sieved checks ManageSieve logins (see
// package auth).
type Auth struct {
	// Backend is "passwd-file" (a Dovecot passwd-file) or "imap" (LOGIN
	// against the existing IMAP server).
	Backend string `toml:"backend"`
	// DefaultDomain is the domain of a bare login ("alice"); "" refuses
	// bare logins.
	DefaultDomain string `toml:"default_domain"`
	// PasswdFile is the Dovecot-compatible passwd-file (backend
	// "passwd-file"); it is re-read when it changes.
	PasswdFile string `toml:"passwd_file"`
	// IMAPAddress is host:port of the IMAP server (backend "imap").
	IMAPAddress string `toml:"imap_address"`
	// IMAPSecurity is "starttls", "tls" (implicit, port 993) or "none"
	// (loopback addresses only).
	IMAPSecurity string `toml:"imap_security"`
	// IMAPCAFile is a PEM bundle trusted for the IMAP server's certificate
	// instead of the system roots; IMAPServerName overrides the name
	// checked in it (default: the host of IMAPAddress).
	IMAPCAFile     string `toml:"imap_ca_file"`
	IMAPServerName string `toml:"imap_server_name"`
	// IMAPTimeout bounds one login check (connect, TLS, LOGIN).
	IMAPTimeout time.Duration `toml:"imap_timeout"`
	// IMAPDomains, when not empty, are the only domains an IMAP-checked
	// login may name (the IMAP server does not say which user it logged
	// in; one that ignores the domain would let a user reach another
	// domain's directory).
	IMAPDomains []string `toml:"imap_domains"`
}

func defaultAuth() Auth {
	return Auth{
		Backend:      "passwd-file",
		PasswdFile:   "/etc/sieved/passwd",
		IMAPAddress:  "127.0.0.1:143",
		IMAPSecurity: "starttls",
		IMAPTimeout:  15 * time.Second,
		IMAPDomains:  []string{},
	}
}

func (x Auth) validate() error {
	switch x.Backend {
	case "passwd-file":
		if x.PasswdFile == "" {
			return fmt.Errorf("auth.passwd_file is empty")
		}
	case "imap":
	default:
		return fmt.Errorf("auth.backend %q: want \"passwd-file\" or \"imap\"", x.Backend)
	}
	if _, _, err := net.SplitHostPort(x.IMAPAddress); err != nil {
		return fmt.Errorf("auth.imap_address %q: %w", x.IMAPAddress, err)
	}
	switch x.IMAPSecurity {
	case "starttls", "tls", "none":
	default:
		return fmt.Errorf("auth.imap_security %q: want \"starttls\", \"tls\" or \"none\"", x.IMAPSecurity)
	}
	if x.IMAPTimeout <= 0 {
		return fmt.Errorf("auth.imap_timeout %v: must be positive", x.IMAPTimeout)
	}
	return nil
}

// Open builds the configured auth backend. log may be nil.
func (x Auth) Open(log *slog.Logger) (auth.Backend, error) {
	switch x.Backend {
	case "passwd-file":
		return auth.NewPasswdFile(x.PasswdFile, x.DefaultDomain, log)
	case "imap":
		tc := &tls.Config{ServerName: x.IMAPServerName}
		if x.IMAPCAFile != "" {
			pem, err := os.ReadFile(x.IMAPCAFile)
			if err != nil {
				return nil, fmt.Errorf("auth.imap_ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("auth.imap_ca_file %s: no PEM certificate", x.IMAPCAFile)
			}
		}
		return auth.NewIMAP(auth.IMAPConfig{
			Address:       x.IMAPAddress,
			Security:      x.IMAPSecurity,
			TLSConfig:     tc,
			Timeout:       x.IMAPTimeout,
			DefaultDomain: x.DefaultDomain,
			Domains:       x.IMAPDomains,
		})
	}
	return nil, fmt.Errorf("auth.backend %q: want \"passwd-file\" or \"imap\"", x.Backend)
}
