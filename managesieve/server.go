// Package managesieve is a ManageSieve server (RFC 5804): clients upload,
// check, list, fetch and activate Sieve scripts (RFC 5228) over it.
//
// It speaks the protocol and nothing else. Users are checked through an
// Authenticator, scripts are kept by a Store and validated by a Compiler;
// cmd/sieved wires the concrete packages in. SASL (RFC 4422) mechanisms
// come from github.com/emersion/go-sasl; TLS is RFC 5804 STARTTLS or an
// implicit-TLS listener.
//
// The wire details that real clients depend on (quoted capabilities, the
// capability block after STARTTLS but not after AUTHENTICATE, literals for
// every string, ...) are documented next to the code that implements them.
package managesieve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	Auth     Authenticator // required
	Store    Store         // required
	Compiler Compiler      // required
	Logger   *slog.Logger  // default slog.Default()

	// TLSConfig enables STARTTLS (and ServeTLS). nil: no TLS. The server
	// never negotiates below TLS 1.2.
	TLSConfig *tls.Config
	// AllowPlaintext offers PLAIN and LOGIN on connections without TLS.
	AllowPlaintext bool
	// AllowPlaintextLoopback does so only for clients on a loopback
	// address (webmails that cannot STARTTLS, on the same host).
	AllowPlaintextLoopback bool

	Implementation string // IMPLEMENTATION capability; default "sieved"
	MaxRedirects   int    // MAXREDIRECTS capability; 0: not advertised

	MaxConnections      int           // overall; default 1000
	MaxConnectionsPerIP int           // default 20
	LoginTimeout        time.Duration // idle limit before login; default 3m
	IdleTimeout         time.Duration // idle limit after login; default 30m (never less)
	WriteTimeout        time.Duration // one response; default 2m
	// The Nth invalid command gets BYE instead of NO and ends the
	// session (Pigeonhole: the 3rd before login, the 21st after).
	MaxBadCommandsLogin int   // before login; default 3
	MaxBadCommands      int   // after login; default 21
	MaxLineLogin        int   // bytes per line before login; default 8192
	MaxLine             int   // bytes per line after login; default 65536
	MaxScriptBytes      int64 // largest script literal; default 1 MiB
	// LoginDelay is the delay before answering the first failed login
	// from an IP; it doubles with each further failure up to
	// MaxLoginDelay. Defaults 1s and 15s; negative disables.
	LoginDelay    time.Duration
	MaxLoginDelay time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Implementation == "" {
		o.Implementation = "sieved"
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxConnections, 1000)
	def(&o.MaxConnectionsPerIP, 20)
	def(&o.MaxBadCommandsLogin, 3)
	def(&o.MaxBadCommands, 21)
	def(&o.MaxLineLogin, 8192)
	def(&o.MaxLine, 65536)
	if o.MaxScriptBytes <= 0 {
		o.MaxScriptBytes = 1 << 20
	}
	defDur(&o.LoginTimeout, 3*time.Minute)
	defDur(&o.IdleTimeout, 30*time.Minute)
	defDur(&o.WriteTimeout, 2*time.Minute)
	defDur(&o.LoginDelay, time.Second)
	defDur(&o.MaxLoginDelay, 15*time.Second)
}

// Server serves ManageSieve connections.
type Server struct {
	opts   Options
	tlsCfg *tls.Config
	log    *slog.Logger

	ctx    context.Context // cancelled when shutdown gives up waiting
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	perIP     map[string]int
	shutdown  bool
	wg        sync.WaitGroup

	failures failureTracker
	nextID   atomic.Uint64
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("managesieve: server closed")

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Auth == nil || opts.Store == nil || opts.Compiler == nil {
		return nil, errors.New("managesieve: Options need Auth, Store and Compiler")
	}
	opts.setDefaults()
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		perIP:     map[string]int{},
	}
	if opts.TLSConfig != nil {
		c := opts.TLSConfig.Clone()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		s.tlsCfg = c
	}
	s.failures.init(opts.LoginDelay, opts.MaxLoginDelay)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts plain connections on l (STARTTLS available when TLS is
// configured) until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS accepts implicit-TLS connections on l.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tlsCfg == nil {
		return errors.New("managesieve: ServeTLS without TLSConfig")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.shutdown
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("managesieve: accept: %w", err)
		}
		backoff = 0
		s.accept(c, implicitTLS)
	}
}

// accept admits c within the connection limits and starts its session.
func (s *Server) accept(c net.Conn, implicitTLS bool) {
	ip := remoteIP(c.RemoteAddr())
	s.mu.Lock()
	var refuse string
	switch {
	case s.shutdown:
		refuse = "Server is shutting down."
	case len(s.sessions) >= s.opts.MaxConnections:
		refuse = "Too many connections."
	case s.perIP[ip] >= s.opts.MaxConnectionsPerIP:
		refuse = "Too many connections from your address."
	}
	if refuse != "" {
		s.mu.Unlock()
		s.log.Warn("connection refused", "remote", c.RemoteAddr().String(), "reason", refuse)
		s.wg.Add(1)
		go func() {
			// In its own goroutine: a client that does not read must
			// not stall the accept loop.
			defer s.wg.Done()
			if !implicitTLS {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte("BYE (" + CodeTryLater + ") " + quote(refuse) + "\r\n"))
			}
			c.Close()
		}()
		return
	}
	sess := newSession(s, c, ip, implicitTLS)
	s.sessions[sess] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
		sess.run()
	}()
}

// Shutdown stops accepting, lets every in-flight command finish, then
// says BYE (TRYLATER) to each client and closes its connection. If ctx
// ends first, the remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.interruptIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for sess := range s.sessions {
			sess.conn().Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func isLoopback(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && p.IsLoopback()
}

// failureTracker remembers failed logins per IP to slow down password
// guessing: the delay doubles with each failure, bounded, and a failure
// is forgotten after forgetAfter.
type failureTracker struct {
	base, max time.Duration
	mu        sync.Mutex
	m         map[string]failureEntry
}

type failureEntry struct {
	count int
	last  time.Time
}

const (
	forgetAfter    = 15 * time.Minute
	maxTrackedIPs  = 100000
	maxDelayDouble = 30
)

func (f *failureTracker) init(base, max time.Duration) {
	f.base, f.max = base, max
	f.m = map[string]failureEntry{}
}

// fail records a failure from ip and returns the delay to apply.
func (f *failureTracker) fail(ip string) time.Duration {
	if f.base < 0 {
		return 0
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.m[ip]
	if now.Sub(e.last) > forgetAfter {
		e.count = 0
	}
	e.count++
	e.last = now
	if len(f.m) >= maxTrackedIPs {
		for k, v := range f.m {
			if now.Sub(v.last) > forgetAfter {
				delete(f.m, k)
			}
		}
		if len(f.m) >= maxTrackedIPs {
			clear(f.m) // memory bound beats precision under a flood
		}
	}
	f.m[ip] = e
	d := f.base << min(e.count-1, maxDelayDouble)
	if d > f.max || d <= 0 {
		d = f.max
	}
	return d
}

// succeed forgets ip's failures.
func (f *failureTracker) succeed(ip string) {
	f.mu.Lock()
	delete(f.m, ip)
	f.mu.Unlock()
}
