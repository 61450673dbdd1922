// Command sieved is the ManageSieve server (RFC 5804): mail clients and
// webmails upload, check and activate the Sieve scripts that sieve-lda runs.
//
// With no arguments it runs a demo on an embedded default configuration:
// it listens on 127.0.0.1:4190, keeps its data under ./sieved-data/ and
// prints the name and password of a demo user it creates on first run.
// Otherwise it reads -config (TOML, see config/example.toml), and the flags
// override the file:
//
//	sieved [-config FILE] [-listen ADDR] [-listen-tls ADDR] [-sieve-root DIR]
//	       [-users PASSWD-FILE | -auth-imap HOST:PORT [-auth-imap-security S]]
//	       [-default-domain DOMAIN]
//	       [-tls-cert FILE -tls-key FILE] [-allow-plaintext]
//
// SIGTERM or SIGINT stops it gracefully: in-flight commands finish, then
// every client gets BYE (TRYLATER).
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/sieved/sieved/cmd/internal/wiring"
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/managesieve"
	"github.com/sieved/sieved/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the command-line settings; empty means "not given".
type flags struct {
	config, listen, listenTLS, root, users, defaultDomain string
	tlsCert, tlsKey, logLevel, imap, imapSecurity         string
	allowPlaintext                                        bool
	set                                                   map[string]bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{set: map[string]bool{}}
	fs := flag.NewFlagSet("sieved", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration `file` (TOML); without it and without -users, a demo runs under ./sieved-data/")
	fs.StringVar(&f.listen, "listen", "", "plain ManageSieve `address` (STARTTLS when a certificate is set), e.g. 127.0.0.1:4190")
	fs.StringVar(&f.listenTLS, "listen-tls", "", "implicit-TLS `address`")
	fs.StringVar(&f.root, "sieve-root", "", "script store root `dir`: <dir>/<domain>/<user>/")
	fs.StringVar(&f.users, "users", "", "Dovecot passwd-file of the users (user@domain:{SCHEME}hash)")
	fs.StringVar(&f.imap, "auth-imap", "", "check passwords by logging in to this IMAP server (`host:port`) instead of -users")
	fs.StringVar(&f.imapSecurity, "auth-imap-security", "", "IMAP connection: starttls (default), tls, or none (loopback only)")
	fs.StringVar(&f.defaultDomain, "default-domain", "", "`domain` of a login without @domain")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate chain (PEM `file`)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM `file`)")
	fs.BoolVar(&f.allowPlaintext, "allow-plaintext", false, "offer PLAIN and LOGIN without TLS")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// settings is everything run needs, after config file, demo defaults and
// flags are merged.
type settings struct {
	cfg  config.Config
	demo *demoSetup // nil unless running the demo
}

func loadSettings(f *flags, stdout io.Writer) (*settings, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return nil, err
		}
	}
	st := &settings{cfg: cfg}
	a := &st.cfg.Auth
	if f.config == "" && f.users == "" && f.imap == "" {
		// README's first command: a self-contained demo.
		d, err := setupDemo(demoDir, stdout)
		if err != nil {
			return nil, err
		}
		st.demo = d
		a.Backend, a.PasswdFile, a.DefaultDomain = "passwd-file", d.usersFile, demoDomain
		st.cfg.Storage.Root = d.root
		st.cfg.Server.AllowPlaintextLoopback = true
	}
	if f.set["users"] && f.set["auth-imap"] {
		return nil, errors.New("-users and -auth-imap exclude each other")
	}
	if f.set["users"] {
		a.Backend, a.PasswdFile = "passwd-file", f.users
	}
	if f.set["auth-imap"] {
		a.Backend, a.IMAPAddress = "imap", f.imap
	}
	if f.set["auth-imap-security"] {
		a.IMAPSecurity = f.imapSecurity
	}
	if f.set["default-domain"] {
		a.DefaultDomain = f.defaultDomain
	}
	s := &st.cfg.Server
	if f.set["listen"] {
		s.Listen = f.listen
	}
	if f.set["listen-tls"] {
		s.ListenTLS = f.listenTLS
	}
	if f.set["sieve-root"] {
		st.cfg.Storage.Root = f.root
	}
	if f.set["tls-cert"] {
		s.TLSCert = f.tlsCert
	}
	if f.set["tls-key"] {
		s.TLSKey = f.tlsKey
	}
	if f.set["allow-plaintext"] {
		s.AllowPlaintext = f.allowPlaintext
	}
	if f.set["log-level"] {
		st.cfg.Log.Level = f.logLevel
	}
	if err := st.cfg.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.Format)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "sieved: %v\n", err)
		return 2
	}
	st, err := loadSettings(f, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "sieved: %v\n", err)
		return 2
	}
	log, err := newLogger(st.cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sieved: %v\n", err)
		return 2
	}
	if err := serve(ctx, st, log, stdout); err != nil {
		log.Error("sieved stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, st *settings, log *slog.Logger, stdout io.Writer) error {
	cfg := st.cfg
	sc := cfg.Server
	store, err := storage.New(cfg.Storage.StoreConfig())
	if err != nil {
		return err
	}
	users, err := cfg.Auth.Open(log)
	if err != nil {
		return err
	}
	eng := engine.New(wiring.EngineConfig(cfg))
	// The largest script literal accepted: the engine's limit, or the
	// store's per-script quota when smaller (refused before it is read).
	maxScript := int64(eng.Limits().MaxScriptBytes)
	if q := cfg.Storage.MaxScriptSize; q > 0 && q < maxScript {
		maxScript = q
	}

	var tlsCfg *tls.Config
	if sc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	loginDelay := sc.LoginDelay
	if loginDelay == 0 {
		loginDelay = -1 // "0s" in the config disables the delay
	}
	srv, err := managesieve.New(managesieve.Options{
		Auth:                   managesieve.AuthBackend{Backend: users},
		Store:                  managesieve.FileStore{Store: store},
		Compiler:               managesieve.EngineCompiler{Engine: eng},
		Logger:                 log,
		TLSConfig:              tlsCfg,
		AllowPlaintext:         sc.AllowPlaintext,
		AllowPlaintextLoopback: sc.AllowPlaintextLoopback,
		Implementation:         sc.Implementation,
		MaxRedirects:           eng.Limits().MaxRedirects,
		MaxConnections:         sc.MaxConnections,
		MaxConnectionsPerIP:    sc.MaxConnectionsPerIP,
		LoginTimeout:           sc.LoginTimeout,
		IdleTimeout:            sc.IdleTimeout,
		MaxBadCommandsLogin:    sc.MaxBadCommandsLogin,
		MaxBadCommands:         sc.MaxBadCommands,
		MaxLineLogin:           sc.MaxLineLogin,
		MaxLine:                sc.MaxLine,
		MaxScriptBytes:         maxScript,
		LoginDelay:             loginDelay,
		MaxLoginDelay:          sc.MaxLoginDelay,
	})
	if err != nil {
		return err
	}
	if tlsCfg == nil && !sc.AllowPlaintext && !sc.AllowPlaintextLoopback {
		log.Warn("no TLS certificate and plaintext logins disallowed: nobody can log in (set tls_cert/tls_key or allow_plaintext)")
	}

	type listener struct {
		l   net.Listener
		tls bool
	}
	var ls []listener
	closeAll := func() {
		for _, x := range ls {
			x.l.Close()
		}
	}
	for _, a := range []struct {
		addr string
		tls  bool
	}{{sc.Listen, false}, {sc.ListenTLS, true}} {
		if a.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if err != nil {
			closeAll()
			return err
		}
		ls = append(ls, listener{l, a.tls})
	}

	errc := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, x := range ls {
		kind := "plain (STARTTLS)"
		switch {
		case x.tls:
			kind = "implicit TLS"
		case tlsCfg == nil:
			kind = "plain"
		}
		// One plain line on stdout per listener: scripts and tests wait
		// for it.
		fmt.Fprintf(stdout, "sieved: listening on %s (%s)\n", x.l.Addr(), kind)
		log.Info("listening", "addr", x.l.Addr().String(), "mode", kind)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if x.tls {
				err = srv.ServeTLS(x.l)
			} else {
				err = srv.Serve(x.l)
			}
			if !errors.Is(err, managesieve.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", sc.ShutdownTimeout)
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out: connections cut", "err", err)
	}
	wg.Wait()
	return serveErr
}

// The demo of README's first command.
const (
	demoDir    = "sieved-data"
	demoDomain = "example.org"
	demoUser   = "demo@example.org"
)

type demoSetup struct {
	usersFile, root string
}

// setupDemo creates ./sieved-data/users (one demo user, random password,
// kept in {PLAIN} so that it can be printed again on the next start) and
// ./sieved-data/sieve/, and prints how to log in.
func setupDemo(dir string, stdout io.Writer) (*demoSetup, error) {
	d := &demoSetup{usersFile: filepath.Join(dir, "users"), root: filepath.Join(dir, "sieve")}
	if err := os.MkdirAll(d.root, 0o750); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	password, err := demoPassword(d.usersFile)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(stdout, "sieved: demo mode, data under %s\n", abs)
	fmt.Fprintf(stdout, "sieved: demo user %s password %s (plaintext login allowed on loopback only)\n", demoUser, password)
	return d, nil
}

// demoPassword returns the demo user's password from the users file,
// creating the file on first run.
func demoPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, demoUser+":{PLAIN}"); ok {
				pw, _, _ := strings.Cut(rest, ":")
				return pw, nil
			}
		}
		return "(see " + path + ")", nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("demo: %w", err)
	}
	var raw [9]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	pw := hex.EncodeToString(raw[:])
	content := "# sieved demo users (Dovecot passwd-file format)\n" + demoUser + ":{PLAIN}" + pw + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return pw, nil
}
