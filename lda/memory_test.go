package lda

import (
	"context"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

// genReader produces a message of n bytes without holding it: a header and
// repeated body lines. It counts what was read.
type genReader struct {
	head  string
	n     int64 // total size wanted
	off   int64
	line  string
	count int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	w := 0
	for w < len(p) && g.off < g.n {
		var src string
		var pos int64
		if g.off < int64(len(g.head)) {
			src, pos = g.head, g.off
		} else {
			src, pos = g.line, (g.off-int64(len(g.head)))%int64(len(g.line))
		}
		k := copy(p[w:], src[pos:])
		if rem := g.n - g.off; int64(k) > rem {
			k = int(rem)
		}
		w += k
		g.off += int64(k)
	}
	g.count += int64(w)
	return w, nil
}

// A 50 MB message is streamed: the bytes allocated during the whole
// delivery (script run included) stay a small fraction of the message
// size. Measured as cumulative allocation (TotalAlloc), which bounds peak
// heap use and does not depend on timing or the GC's schedule.
func TestLargeMessageAllocationBound(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB")
	}
	const size = 50 << 20
	// Measured: about 0.2 MB (the message goes from the reader to the
	// Maildir spool through a fixed buffer; the script reads that file).
	// The bound leaves room for the race detector, which disables
	// sync.Pool reuse.
	const bound = 4 << 20
	e := newEnv(t, `require ["fileinto", "imap4flags"];
if header :contains "subject" "big" { fileinto "Big"; }
if size :over 10M { addflag "$Large"; fileinto "Large"; }`)
	g := &genReader{head: "From: bob@example.net\nSubject: a big one\n\n", n: size,
		line: strings.Repeat("0123456789abcdef", 4) + "\n"}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := e.l.Deliver(context.Background(), Request{Recipient: "alice@example.org", Sender: "bob@example.net", SenderSet: true}, g)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if g.count != size {
		t.Fatalf("read %d bytes, want %d", g.count, size)
	}
	if len(rep.Stored) != 2 {
		t.Fatalf("stored %d copies, want Big and Large: %s", len(rep.Stored), e.logs)
	}
	for _, s := range rep.Stored {
		st, err := os.Stat(s.Path)
		if err != nil || st.Size() != size {
			t.Fatalf("%s: %v, size %d", s.Path, err, st.Size())
		}
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("delivering %d MB allocated %.2f MB", size>>20, float64(alloc)/(1<<20))
	if alloc > bound {
		t.Errorf("delivering a %d MB message allocated %d bytes, want <= %d", size>>20, alloc, bound)
	}
}
