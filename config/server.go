package config

import (
	"fmt"
	"net"
	"time"
)

// Server is the [server] section: sieved, the ManageSieve server
// (RFC 5804). Durations are strings such as "30m" or "15s".
type Server struct {
	// Listen is the plain ManageSieve address (STARTTLS is offered when
	// a certificate is configured); "" disables it.
	Listen string `toml:"listen"`
	// ListenTLS is an optional implicit-TLS address; "" disables it.
	ListenTLS string `toml:"listen_tls"`
	// TLSCert and TLSKey are PEM files; setting them enables STARTTLS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// AllowPlaintext offers PLAIN and LOGIN on connections without TLS.
	AllowPlaintext bool `toml:"allow_plaintext"`
	// AllowPlaintextLoopback does so only for clients on 127.0.0.0/8 or
	// ::1 (a webmail on the same host that cannot STARTTLS).
	AllowPlaintextLoopback bool `toml:"allow_plaintext_loopback"`
	// Implementation is the IMPLEMENTATION capability.
	Implementation string `toml:"implementation"`

	MaxConnections      int           `toml:"max_connections"`
	MaxConnectionsPerIP int           `toml:"max_connections_per_ip"`
	LoginTimeout        time.Duration `toml:"login_timeout"`
	IdleTimeout         time.Duration `toml:"idle_timeout"`
	MaxBadCommandsLogin int           `toml:"max_bad_commands_login"`
	MaxBadCommands      int           `toml:"max_bad_commands"`
	MaxLineLogin        int           `toml:"max_line_login"`
	MaxLine             int           `toml:"max_line"`
	LoginDelay          time.Duration `toml:"login_delay"`
	MaxLoginDelay       time.Duration `toml:"max_login_delay"`
	ShutdownTimeout     time.Duration `toml:"shutdown_timeout"`
}

func defaultServer() Server {
	return Server{
		Listen:              "127.0.0.1:4190",
		Implementation:      "sieved",
		MaxConnections:      1000,
		MaxConnectionsPerIP: 20,
		LoginTimeout:        3 * time.Minute,
		IdleTimeout:         30 * time.Minute,
		MaxBadCommandsLogin: 3,
		MaxBadCommands:      21,
		MaxLineLogin:        8192,
		MaxLine:             65536,
		LoginDelay:          time.Second,
		MaxLoginDelay:       15 * time.Second,
		ShutdownTimeout:     30 * time.Second,
	}
}

func (x Server) validate() error {
	for _, a := range []struct{ key, v string }{{"listen", x.Listen}, {"listen_tls", x.ListenTLS}} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return fmt.Errorf("server.%s: %w", a.key, err)
		}
	}
	if x.Listen == "" && x.ListenTLS == "" {
		return fmt.Errorf("server: listen and listen_tls are both empty")
	}
	if (x.TLSCert == "") != (x.TLSKey == "") {
		return fmt.Errorf("server: tls_cert and tls_key go together")
	}
	if x.ListenTLS != "" && x.TLSCert == "" {
		return fmt.Errorf("server.listen_tls needs tls_cert and tls_key")
	}
	// Clients keep a session alive with NOOP for minutes (RFC 5804
	// section 1.9 wants a generous timeout); Pigeonhole uses 30 minutes.
	if x.IdleTimeout < 30*time.Minute {
		return fmt.Errorf("server.idle_timeout must be at least 30m, is %s", x.IdleTimeout)
	}
	if x.LoginTimeout <= 0 || x.ShutdownTimeout <= 0 {
		return fmt.Errorf("server: login_timeout and shutdown_timeout must be positive")
	}
	if x.MaxLineLogin < 1024 || x.MaxLine < x.MaxLineLogin {
		return fmt.Errorf("server: need 1024 <= max_line_login <= max_line")
	}
	if x.MaxConnections < 1 || x.MaxConnectionsPerIP < 1 || x.MaxBadCommandsLogin < 1 || x.MaxBadCommands < 1 {
		return fmt.Errorf("server: connection and bad-command limits must be at least 1")
	}
	if x.LoginDelay < 0 || x.MaxLoginDelay < x.LoginDelay {
		return fmt.Errorf("server: need 0 <= login_delay <= max_login_delay")
	}
	return nil
}
