// Package sender submits mail that sieved's programs create: redirected
// messages, rejection notices (RFC 5429) and vacation replies (RFC 5230).
// It runs a sendmail-compatible command or talks SMTP (RFC 5321) to a relay
// with github.com/emersion/go-smtp.
package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sieved/sieved/config"
)

// Sender submits one message. from is the envelope sender ("" for the
// null sender <>); msg is the complete message with LF or CRLF line ends.
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg io.Reader) error
}

// New returns the Sender the [sender] section configures.
func New(c config.Sender) (Sender, error) {
	timeout := time.Duration(c.TimeoutSeconds) * time.Second
	switch c.Method {
	case "sendmail", "":
		return &Sendmail{Path: c.SendmailPath, Args: c.SendmailArgs, Timeout: timeout}, nil
	case "smtp":
		s := &SMTP{Addr: c.SMTPAddr, TLS: c.SMTPTLS, Helo: c.SMTPHelo, Username: c.SMTPUsername, Timeout: timeout}
		if c.SMTPPasswordFile != "" {
			b, err := os.ReadFile(c.SMTPPasswordFile)
			if err != nil {
				return nil, fmt.Errorf("sender: password file: %w", err)
			}
			s.Password = strings.TrimRight(string(b), "\r\n")
		}
		return s, nil
	}
	return nil, fmt.Errorf("sender: unknown method %q", c.Method)
}

// checkAddrs refuses addresses that could smuggle options or protocol
// lines into the command or the session.
func checkAddrs(from string, to []string) error {
	if len(to) == 0 {
		return errors.New("sender: no recipients")
	}
	for _, a := range append([]string{from}, to...) {
		if strings.ContainsAny(a, "\r\n\x00<> \t") {
			return fmt.Errorf("sender: invalid address %q", a)
		}
	}
	for _, a := range to {
		if a == "" || strings.HasPrefix(a, "-") {
			return fmt.Errorf("sender: invalid recipient %q", a)
		}
	}
	return nil
}

// Sendmail runs a sendmail-compatible command (Exim, Postfix, msmtp...):
// <Path> <Args...> -f <from> -- <to...>, with the message on stdin. The
// null sender is passed as "-f <>", which Exim and Postfix understand.
type Sendmail struct {
	Path    string
	Args    []string // e.g. ["-i"]: a lone "." line does not end the message
	Timeout time.Duration
}

// Send implements Sender.
func (s *Sendmail) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	if err := checkAddrs(from, to); err != nil {
		return err
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	f := from
	if f == "" {
		f = "<>"
	}
	args := append(append([]string{}, s.Args...), "-f", f, "--")
	args = append(args, to...)
	cmd := exec.CommandContext(ctx, s.Path, args...)
	cmd.Stdin = msg
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("sender: %s: %w: %s", s.Path, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// limitedBuffer keeps the first 4 KiB of a command's output for the error.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		b.Buffer.Write(p[:room])
	}
	return len(p), nil
}

// SMTP submits to a relay.
type SMTP struct {
	Addr string // host:port
	// TLS: "none", "starttls" (required when set) or "tls" (implicit).
	TLS       string
	TLSConfig *tls.Config // nil: verify against Addr's host name
	Helo      string      // "" = os.Hostname()
	// Username and Password enable AUTH PLAIN when Username is set.
	Username, Password string
	Timeout            time.Duration
}

// Send implements Sender. The context's deadline (or Timeout) bounds the
// whole session: it is the connection's deadline, and cancelling the
// context closes the connection.
func (s *SMTP) Send(ctx context.Context, from string, to []string, msg io.Reader) (err error) {
	if err := checkAddrs(from, to); err != nil {
		return err
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	wrap := func(op string, err error) error {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("sender: smtp %s %s: %w", s.Addr, op, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return wrap("dial", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tlsConf := s.TLSConfig
	if tlsConf == nil {
		host, _, _ := net.SplitHostPort(s.Addr)
		tlsConf = &tls.Config{ServerName: host}
	}
	var c *smtp.Client
	switch s.TLS {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tlsConf))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, tlsConf)
		if err != nil {
			conn.Close()
			return wrap("starttls", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	helo := s.Helo
	if helo == "" {
		helo, _ = os.Hostname()
	}
	if helo != "" {
		if err := c.Hello(helo); err != nil {
			return wrap("hello", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return wrap("auth", err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return wrap("MAIL", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return wrap("RCPT", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return wrap("DATA", err)
	}
	if _, err := io.Copy(w, msg); err != nil {
		w.Close()
		return wrap("DATA", err)
	}
	if err := w.Close(); err != nil {
		return wrap("DATA", err)
	}
	// The message was accepted; a failed QUIT does not undo that.
	_ = c.Quit()
	return nil
}
