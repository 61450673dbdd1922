package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAP connection security.
const (
	IMAPStartTLS = "starttls" // plain connection upgraded with STARTTLS
	IMAPTLS      = "tls"      // implicit TLS (port 993)
	IMAPPlain    = "none"     // no TLS: loopback addresses only
)

// IMAPConfig configures the IMAP backend.
type IMAPConfig struct {
	Address       string        // host:port of the IMAP server
	Security      string        // IMAPStartTLS (default), IMAPTLS or IMAPPlain
	TLSConfig     *tls.Config   // nil: system roots, ServerName = host of Address
	Timeout       time.Duration // whole check (dial, TLS, LOGIN); default 15s
	DefaultDomain string        // for bare logins, as SplitLogin
	// Domains, when not empty, are the only domains a login may name.
	// The IMAP server says yes or no to a login, never which user it
	// logged in: one that ignores the domain part (Dovecot's
	// auth_username_format = %n) would let alice@anything.example reach
	// <root>/anything.example/alice. Compared case-insensitively.
	Domains []string
	// Dialer dials the server; nil is a plain net.Dialer. Its LocalAddr
	// picks the source address the IMAP server sees (and rate-limits).
	Dialer *net.Dialer
}

// IMAP authenticates by logging in to the existing IMAP server with the
// user's credentials (IMAP LOGIN, RFC 9051 section 6.2.3), so users keep one
// password. Each check is one short connection; nothing is cached.
type IMAP struct {
	cfg  IMAPConfig
	host string
}

// NewIMAP checks cfg. Without TLS the address must be a loopback one, so a
// password never crosses a network in clear text.
func NewIMAP(cfg IMAPConfig) (*IMAP, error) {
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("auth: imap address %q: %w", cfg.Address, err)
	}
	if cfg.Security == "" {
		cfg.Security = IMAPStartTLS
	}
	switch cfg.Security {
	case IMAPStartTLS, IMAPTLS:
	case IMAPPlain:
		if !isLoopback(host) {
			return nil, fmt.Errorf("auth: imap %s: security %q is only allowed to a loopback address", cfg.Address, cfg.Security)
		}
	default:
		return nil, fmt.Errorf("auth: imap security %q: want %q, %q or %q", cfg.Security, IMAPStartTLS, IMAPTLS, IMAPPlain)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &IMAP{cfg: cfg, host: host}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (b *IMAP) tlsConfig() *tls.Config {
	var c *tls.Config
	if b.cfg.TLSConfig != nil {
		c = b.cfg.TLSConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = b.host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Authenticate logs in to the IMAP server as username with password. A NO
// to LOGIN is ErrInvalidCredentials, except [UNAVAILABLE] and
// [PRIVACYREQUIRED]; connection, TLS and protocol failures are
// ErrUnavailable.
func (b *IMAP) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	id, err := SplitLogin(username, b.cfg.DefaultDomain)
	if err != nil {
		return Identity{}, err
	}
	if len(b.cfg.Domains) > 0 && !slices.ContainsFunc(b.cfg.Domains, func(d string) bool { return strings.EqualFold(d, id.Domain) }) {
		return Identity{}, fmt.Errorf("auth: imap: login %q: domain not served here: %w", sanitize(username), ErrInvalidCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	unavailable := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return fmt.Errorf("auth: imap %s: %w: %w", b.cfg.Address, ErrUnavailable, err)
	}

	d := b.cfg.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", b.cfg.Address)
	if err != nil {
		return Identity{}, unavailable(err)
	}
	// imapclient manages its own per-read deadlines; this bounds the
	// whole exchange by ctx.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	var c *imapclient.Client
	switch b.cfg.Security {
	case IMAPTLS:
		tc := tls.Client(conn, b.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return Identity{}, unavailable(err)
		}
		c = imapclient.New(tc, nil)
	case IMAPStartTLS:
		c, err = imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: b.tlsConfig()})
		if err != nil {
			return Identity{}, unavailable(err)
		}
	default:
		c = imapclient.New(conn, nil)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return Identity{}, unavailable(err)
	}
	if c.State() != imap.ConnStateNotAuthenticated {
		return Identity{}, unavailable(fmt.Errorf("unexpected state %v after greeting", c.State()))
	}
	if c.Caps().Has(imap.CapLoginDisabled) {
		return Identity{}, unavailable(errors.New("server advertises LOGINDISABLED"))
	}
	err = c.Login(username, password).Wait()
	if err == nil {
		_ = c.Logout().Wait()
		return id, nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo &&
		ie.Code != imap.ResponseCodeUnavailable && ie.Code != imap.ResponseCodePrivacyRequired {
		return Identity{}, fmt.Errorf("auth: imap %s: user %q: %v: %w", b.cfg.Address, sanitize(username), err, ErrInvalidCredentials)
	}
	return Identity{}, unavailable(err)
}
