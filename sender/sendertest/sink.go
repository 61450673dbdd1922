// Package sendertest runs a real SMTP server (github.com/emersion/go-smtp)
// on 127.0.0.1 that records what it receives, for tests of code that sends
// mail through package sender.
package sendertest

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one received message.
type Mail struct {
	From string
	To   []string
	Data string // as received, CRLF line ends
	User string // AUTH PLAIN user, "" without AUTH
}

// Sink is a recording SMTP server.
type Sink struct {
	Addr string
	// Reject, when set, makes RCPT TO fail for that address (a 550).
	Reject string
	// Password, when set, is required for AUTH PLAIN.
	Password string

	mu    sync.Mutex
	mails []Mail
}

// NewSink starts a Sink; it stops when the test ends.
func NewSink(t testing.TB) *Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &Sink{Addr: l.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{sink: k}, nil
	}))
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return k
}

// Mails returns what was received so far.
func (k *Sink) Mails() []Mail {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Mail(nil), k.mails...)
}

type session struct {
	sink *Sink
	cur  Mail
	user string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if password != s.sink.Password {
			return errors.New("bad password")
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Reset()        { s.cur = Mail{} }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = Mail{From: from, User: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.sink.Reject != "" && strings.EqualFold(to, s.sink.Reject) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.sink.mu.Lock()
	s.sink.mails = append(s.sink.mails, s.cur)
	s.sink.mu.Unlock()
	return nil
}
