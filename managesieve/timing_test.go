package managesieve

import (
	"testing"
	"time"

	"github.com/sieved/sieved/storage"
)

// These tests check on the wire, with real TCP clients, the two timing
// behaviours that TestFailureDelay and the "login timeout" case of
// TestLimits only cover in part: the growing per-IP delay before a failed
// login is answered, and the idle timeouts before and after login.
// Timing assertions are lower bounds (a timer never fires early) plus
// upper bounds with margins of hundreds of milliseconds, chosen so that a
// broken feature lands on the wrong side of the bound by construction.

// timedAuth sends AUTHENTICATE PLAIN with the password and returns the
// response and how long it took to arrive.
func (c *client) timedAuth(password string) (resp, time.Duration) {
	c.t.Helper()
	start := time.Now()
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@example.org\x00"+password) + `"`)
	r := c.response()
	return r, time.Since(start)
}

func TestLoginDelayOnTheWire(t *testing.T) {
	const (
		base  = 100 * time.Millisecond
		limit = 400 * time.Millisecond
		// slack is the upper margin for scheduling on a loaded machine,
		// small enough that an uncapped delay (800ms), a delay kept
		// after a success (400ms) or a delayed success misses the bounds.
		slack = 300 * time.Millisecond
	)
	e := newEnv(t, func(o *Options, _ *storage.Config) {
		o.LoginDelay, o.MaxLoginDelay = base, limit
	})

	// Four failures from 127.0.0.1 over two connections: the delay is
	// per IP, not per connection, so the second connection goes on
	// doubling. Uncapped, the fourth would wait 8*base = 800ms.
	steps := []struct {
		conn     int
		min, max time.Duration // bounds on the time to the NO
	}{
		{0, base, 2*base + slack/2},   // 100ms, not yet doubled
		{0, 2 * base, 4*base + slack}, // 200ms
		{1, limit, limit + slack},     // 400ms: 4*base reaches the cap
		{1, limit, limit + slack},     // capped: 400ms, not 800ms
	}
	conns := []*client{e.greeted(), e.greeted()}
	for i, st := range steps {
		r, d := conns[st.conn].timedAuth("wrong")
		if r.raw != "NO \"Authentication failed.\"\r\n" {
			t.Fatalf("failure %d: got %q", i+1, r.raw)
		}
		if d < st.min || d >= st.max {
			t.Errorf("failure %d answered after %v, want [%v, %v)", i+1, d, st.min, st.max)
		}
	}

	// A correct password from the same IP is answered at once (not after
	// the 400ms the next failure would wait) and logs in.
	ok := e.greeted()
	r, d := ok.timedAuth("secret")
	if r.status != "OK" {
		t.Fatalf("login after failures: %s", r.raw)
	}
	if d >= limit-base {
		t.Errorf("successful login took %v; successes must not be delayed", d)
	}
	ok.send("NOOP")
	if r := ok.response(); r.status != "OK" {
		t.Fatalf("NOOP after login: %s", r.raw)
	}

	// The success forgot the IP's failures: the next failure waits base
	// again, not the capped 400ms.
	r, d = e.greeted().timedAuth("wrong")
	if r.status != "NO" {
		t.Fatalf("failure after success: %s", r.raw)
	}
	if d < base || d >= limit-base {
		t.Errorf("failure after a success answered after %v, want [%v, %v)", d, base, limit-base)
	}
}

func TestIdleTimeoutsOnTheWire(t *testing.T) {
	const (
		loginTimeout = 100 * time.Millisecond
		idleTimeout  = 500 * time.Millisecond
		bye          = "BYE \"Disconnected for inactivity.\"\r\n"
	)
	cases := []struct {
		name string
		// setup brings a connection into the state under test and
		// returns it with the moment just before its last request: the
		// server armed the read deadline after that, so the BYE cannot
		// come before sent+min.
		setup func(t *testing.T, e *testEnv) (cl *client, sent time.Time)
		min   time.Duration
		// within bounds the BYE from sent; zero: no upper bound (a
		// missing BYE fails the read anyway).
		within time.Duration
	}{
		{
			name: "before login",
			setup: func(t *testing.T, e *testEnv) (*client, time.Time) {
				sent := time.Now()
				return e.greeted(), sent
			},
			min: loginTimeout,
			// The short limit, not the one after login.
			within: idleTimeout - 100*time.Millisecond,
		},
		{
			name: "after a failed login the short limit still applies",
			setup: func(t *testing.T, e *testEnv) (*client, time.Time) {
				cl := e.greeted()
				sent := time.Now()
				if r, _ := cl.timedAuth("wrong"); r.status != "NO" {
					t.Fatalf("bad password: %s", r.raw)
				}
				return cl, sent
			},
			min:    loginTimeout,
			within: idleTimeout - 100*time.Millisecond,
		},
		{
			name: "after login",
			setup: func(t *testing.T, e *testEnv) (*client, time.Time) {
				sent := time.Now()
				return e.login(), sent
			},
			// The long limit, not the one before login.
			min: idleTimeout,
		},
		{
			name: "NOOP keeps an authenticated connection alive",
			setup: func(t *testing.T, e *testEnv) (*client, time.Time) {
				cl := e.login()
				// 5 NOOPs 150ms apart span 750ms, more than one
				// idleTimeout, and no gap comes close to it.
				var sent time.Time
				for i := range 5 {
					time.Sleep(150 * time.Millisecond)
					sent = time.Now()
					cl.send("NOOP")
					if r := cl.response(); r.raw != "OK \"NOOP Completed\"\r\n" {
						t.Fatalf("NOOP %d: got %q", i, r.raw)
					}
				}
				return cl, sent
			},
			min: idleTimeout,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *Options, _ *storage.Config) {
				o.LoginTimeout, o.IdleTimeout = loginTimeout, idleTimeout
			})
			cl, sent := tc.setup(t, e)
			r := cl.response()
			d := time.Since(sent)
			if r.raw != bye {
				t.Fatalf("got %q, want %q", r.raw, bye)
			}
			if d < tc.min {
				t.Errorf("BYE %v after the last request, want >= %v", d, tc.min)
			}
			if tc.within > 0 && d >= tc.within {
				t.Errorf("BYE %v after the last request, want < %v", d, tc.within)
			}
			cl.expectClosed()

			// The server goes on serving other clients.
			fresh := e.login()
			fresh.send("LISTSCRIPTS")
			if r := fresh.response(); r.status != "OK" {
				t.Fatalf("new client after the timeout: %s", r.raw)
			}
		})
	}
}
