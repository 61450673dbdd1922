package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/<Target>/, generated from the readable
// fixtures in testdata/scripts and testdata/messages by testdata/gencorpus.go.
//
// SIEVED_FUZZ_STRICT=1 makes FuzzCompileExecute fail on every panic the
// engine recovered (useful to find interpreter bugs); by default only panics
// in the message adapter fail, the others are the engine's documented
// safety net.

var fuzzEngine = New(Config{Limits: Limits{Timeout: 2 * time.Second}})

// FuzzCompile: no script makes Compile panic, and the outcome is coherent.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`require "fileinto"; fileinto "x";`))
	for _, c := range conformanceSeeds(f) {
		f.Add(c.script)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, diags := fuzzEngine.Compile("fuzz", src)
		if (s == nil) != diags.HasErrors() {
			t.Fatalf("script %v with diagnostics %v", s != nil, diags)
		}
		for _, d := range diags {
			if d.Message == "" || d.Line < 0 || d.Column < 0 {
				t.Fatalf("bad diagnostic %+v", d)
			}
			if strings.Contains(d.Message, "LoadCmd") || strings.Contains(d.Message, "LoadTest") {
				t.Fatalf("interpreter call chain in %q", d.Message)
			}
		}
		_ = diags.Format("fuzz", fuzzEngine.Limits().MaxErrors)
	})
}

// FuzzMessage: any byte string is accepted, delivered back unchanged, and
// its MIME structure stays within bounds and inside the message.
func FuzzMessage(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"))
	lim := Limits{MaxMIMEDepth: 8, MaxMIMEParts: 64, MaxBodyBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := MessageOptions{Limits: lim, MaxHeaderBytes: 4 << 10}
		if len(data)%4 == 0 {
			opt.MemoryLimit, opt.TempDir = -1, os.TempDir()
		}
		m, err := NewMessage(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var out bytes.Buffer
		if _, err := m.WriteTo(&out); err != nil || !bytes.Equal(out.Bytes(), data) || m.Size() != int64(len(data)) {
			t.Fatalf("WriteTo changed the message (%v)", err)
		}
		for _, k := range []string{"subject", "from", "to", "content-type", "x-unknown"} {
			got, err := m.HeaderGet(k)
			if err != nil || len(got) != len(m.HeaderRaw(k)) {
				t.Fatalf("HeaderGet(%q) = %q, %v; raw %q", k, got, err, m.HeaderRaw(k))
			}
		}
		ctx := context.Background()
		if r, err := m.BodyRaw(ctx); err != nil {
			t.Fatal(err)
		} else if r != nil {
			b, _ := io.ReadAll(r)
			if !bytes.HasSuffix(data, b) {
				t.Fatal("BodyRaw is not the tail of the message")
			}
		}
		parts, err := m.BodyParts(ctx, []string{""})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			r, err := p.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Decoding never grows content beyond 3 bytes per input byte
			// (a single-byte charset to UTF-8) plus the multipart CRLF.
			n, _ := io.Copy(io.Discard, r)
			if n > 3*int64(len(data))+2 {
				t.Fatalf("part %s decoded to %d bytes from %d", p.ContentType(), n, len(data))
			}
		}
		if m.buffered > lim.MaxBodyBytes {
			t.Fatalf("buffered %d > %d", m.buffered, lim.MaxBodyBytes)
		}
		ents, _ := m.entities(ctx)
		if len(ents) > lim.MaxMIMEParts {
			t.Fatalf("%d entities", len(ents))
		}
		size := m.Size()
		for _, e := range ents {
			if e.depth > lim.MaxMIMEDepth || !(0 <= e.start && e.start <= e.hdrEnd && e.hdrEnd <= e.bodyStart &&
				e.bodyStart <= e.end && e.end <= size) {
				t.Fatalf("entity out of bounds: %+v (size %d)", e, size)
			}
			if e.kind == kindMultipart && !(e.bodyStart <= e.preambleEnd && e.preambleEnd <= e.end &&
				e.bodyStart <= e.epilogueStart && e.epilogueStart <= e.end) {
				t.Fatalf("multipart out of bounds: %+v", e)
			}
		}
	})
}

// FuzzCompileExecute: a script and a message through Compile and Run: no
// panic escapes, no run outlives its deadline.
func FuzzCompileExecute(f *testing.F) {
	f.Add([]byte(`require "body"; if body :text :contains "x" { discard; }`), []byte("Subject: x\r\n\r\nx\r\n"))
	for _, c := range conformanceSeeds(f) {
		f.Add(c.script, c.message)
	}
	strict := os.Getenv("SIEVED_FUZZ_STRICT") == "1"
	f.Fuzz(func(t *testing.T, src, msg []byte) {
		s, diags := fuzzEngine.Compile("fuzz", src)
		if diags.HasErrors() {
			return
		}
		m, err := fuzzEngine.NewMessage(bytes.NewReader(msg), MessageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		limit := fuzzEngine.Limits().Timeout
		start := time.Now()
		res, err := fuzzEngine.Run(context.Background(), s, Envelope{From: "a@example.org", To: "b+x@example.org"}, m)
		if took := time.Since(start); took > limit+time.Second {
			t.Fatalf("run took %v, deadline %v", took, limit)
		}
		// A recovered panic is the RuntimeError that carries a stack (its
		// Msg is the panic value, which rarely says "panic").
		var rerr *RuntimeError
		if errors.As(err, &rerr) && len(rerr.Stack) > 0 {
			if strict || bytes.Contains(rerr.Stack, []byte("engine/message.go")) {
				t.Fatalf("recovered panic: %s\n%s", rerr.Msg, rerr.Stack)
			}
		}
		if err != nil {
			return
		}
		if len(res.Actions) > fuzzEngine.Limits().MaxActions+1 {
			t.Fatalf("%d actions", len(res.Actions))
		}
		for _, a := range res.Actions {
			_ = String(a)
		}
	})
}

// conformanceSeed is one case of the conformance corpus
// (../testdata/conformance, format in its README) as fuzz input.
type conformanceSeed struct{ script, message []byte }

// conformanceSeeds returns the script and message of every conformance
// case, so the compile targets start from the 350-odd scripts written for
// the side-by-side test with Pigeonhole (working ones and broken ones).
func conformanceSeeds(tb testing.TB) []conformanceSeed {
	tb.Helper()
	dir := filepath.Join("..", "testdata", "conformance")
	files, err := filepath.Glob(filepath.Join(dir, "cases", "*.case"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no conformance cases under %s", dir)
	}
	var out []conformanceSeed
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		sections := map[string]*bytes.Buffer{}
		var cur *bytes.Buffer
		msgFile := ""
		for _, line := range strings.SplitAfter(string(b), "\n") {
			trim := strings.TrimRight(line, "\r\n")
			if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
				cur = &bytes.Buffer{}
				sections[strings.TrimSpace(trim[3:len(trim)-3])] = cur
				continue
			}
			if cur != nil {
				cur.WriteString(line)
			} else if v, ok := strings.CutPrefix(trim, "message:"); ok {
				msgFile = strings.TrimSpace(v)
			}
		}
		s, ok := sections["script"]
		if !ok {
			tb.Fatalf("%s: no script section", f)
		}
		c := conformanceSeed{script: s.Bytes()}
		if m, ok := sections["message"]; ok {
			c.message = m.Bytes()
		} else if msgFile != "" {
			if c.message, err = os.ReadFile(filepath.Join(dir, "messages", msgFile)); err != nil {
				tb.Fatal(err)
			}
		}
		out = append(out, c)
	}
	return out
}
