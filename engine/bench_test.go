package engine

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
)

// The benchmark fixtures: a realistic 40-rule personal filter (header,
// address and envelope tests, :matches, subaddress, relational, one
// body :text :contains, fileinto, imap4flags, variables) and a 20 KB
// multipart message (text, HTML, base64 attachment) on which it runs
// through to the body rule.
func benchFixtures(b *testing.B) (script, msg []byte) {
	b.Helper()
	script, err := os.ReadFile("testdata/bench/rules.sieve")
	if err != nil {
		b.Fatal(err)
	}
	msg, err = os.ReadFile("testdata/bench/message.eml")
	if err != nil {
		b.Fatal(err)
	}
	return script, msg
}

var benchEnvelope = Envelope{From: "carol@partner.example", To: "bob+work@example.org"}

func BenchmarkCompile40Rules(b *testing.B) {
	script, _ := benchFixtures(b)
	e := New(Config{})
	b.ReportAllocs()
	b.SetBytes(int64(len(script)))
	for b.Loop() {
		if _, d := e.Compile("rules", script); d.HasErrors() {
			b.Fatal(d.Format("rules", 0))
		}
	}
}

// BenchmarkExecute40Rules is one delivery: the message is read into a
// fresh Message (as sieve-lda does once per message) and the script runs.
func BenchmarkExecute40Rules(b *testing.B) {
	script, msg := benchFixtures(b)
	e := New(Config{})
	s, d := e.Compile("rules", script)
	if d.HasErrors() {
		b.Fatal(d.Format("rules", 0))
	}
	check := func() {
		m, err := e.NewMessage(bytes.NewReader(msg), MessageOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := e.Run(context.Background(), s, benchEnvelope, m)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
		// The body rule must have been reached and matched.
		found := false
		for _, a := range res.Actions {
			if f, ok := a.(FileInto); ok && f.Mailbox == "Reports" {
				found = true
			}
		}
		if !found {
			b.Fatalf("body rule did not match: %v", res.Actions)
		}
	}
	check()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		check()
	}
}

// BenchmarkCompileExecute40Rules is what one sieve-lda delivery costs the
// engine: compile the script (sieve-lda keeps no compiled cache), read the
// 20 KB multipart message and run the script on it.
func BenchmarkCompileExecute40Rules(b *testing.B) {
	script, msg := benchFixtures(b)
	e := New(Config{})
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		s, d := e.Compile("rules", script)
		if d.HasErrors() {
			b.Fatal(d.Format("rules", 0))
		}
		m, err := e.NewMessage(bytes.NewReader(msg), MessageOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := e.Run(context.Background(), s, benchEnvelope, m)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
		if len(res.Actions) == 0 {
			b.Fatal("no actions")
		}
	}
}

// BenchmarkExecute40RulesWarm reruns the script on one Message: the header
// decoding and the MIME walk are cached, so this is the interpreter's share.
func BenchmarkExecute40RulesWarm(b *testing.B) {
	script, msg := benchFixtures(b)
	e := New(Config{})
	s, d := e.Compile("rules", script)
	if d.HasErrors() {
		b.Fatal(d.Format("rules", 0))
	}
	m, err := e.NewMessage(bytes.NewReader(msg), MessageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Run(context.Background(), s, benchEnvelope, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessage50MB is one adapter pass over a 50 MB message: spool to
// a temporary file, parse the header, walk the MIME structure, decode every
// part and deliver the original bytes. B/op shows the memory it costs,
// which must not grow with the message.
func BenchmarkMessage50MB(b *testing.B) {
	const size = 50 << 20
	dir := b.TempDir()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		m, err := NewMessage(bigMessage(size), MessageOptions{TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if v, _ := m.HeaderGet("subject"); len(v) != 1 {
			b.Fatal("no subject")
		}
		parts, err := m.BodyParts(ctx, []string{""})
		if err != nil || len(parts) != 3 {
			b.Fatalf("%d parts, %v", len(parts), err)
		}
		for _, p := range parts {
			r, err := p.Open(ctx)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r)
		}
		if _, err := m.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// BenchmarkDeepNesting20000: a message with MIME nested 20,000 deep (go-sieve's
// own walk takes over a minute) under a body test, per delivery.
func BenchmarkDeepNesting20000(b *testing.B) {
	raw := []byte(deepNesting(20000))
	e := New(Config{})
	s, d := e.Compile("deep", []byte(`require ["body", "fileinto"]; if body :text :contains "needle" { fileinto "Found"; }`))
	if d.HasErrors() {
		b.Fatal(d.Format("deep", 0))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		m, err := e.NewMessage(bytes.NewReader(raw), MessageOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Run(context.Background(), s, benchEnvelope, m); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
