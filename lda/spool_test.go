package lda

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// writtenBytes is the number of bytes this process has passed to write(2)
// and friends (pwrite, copy_file_range, sendfile...), from /proc/self/io.
func writtenBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no per-process I/O accounting here: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("/proc/self/io has no wchar")
	return 0
}

// A message larger than the engine's in-memory limit (256 KiB) is written
// once: into the Maildir's tmp/, which the script reads and the folders
// link. Counted as bytes written by the whole process during Deliver, so
// any second copy (an engine spool, a copy per folder) shows, whatever
// writes it.
func TestLargeMessageWrittenOnce(t *testing.T) {
	const size = 1 << 20
	e := newEnv(t, `require ["fileinto", "body", "copy"];
if header :contains "subject" "big" { fileinto :copy "Big"; }
if body :text :contains "needle" { fileinto "Needle"; }`)
	head := "From: bob@example.net\nSubject: a big one\n\nthe needle is here\n"
	g := &genReader{head: head, n: size, line: strings.Repeat("0123456789abcdef", 4) + "\n"}

	before := writtenBytes(t)
	rep, err := e.l.Deliver(context.Background(), Request{Recipient: "alice@example.org", Sender: "bob@example.net", SenderSet: true}, g)
	written := writtenBytes(t) - before
	if err != nil {
		t.Fatal(err)
	}
	// The script ran on the large message and both copies are complete.
	if rep.ScriptProblem != "" || len(rep.Stored) != 2 {
		t.Fatalf("stored %v, script problem %q\n%s", rep.Stored, rep.ScriptProblem, e.logs)
	}
	var ino uint64
	for i, s := range rep.Stored {
		if s.Folder.IsInbox() {
			t.Fatalf("stored in INBOX: %v", rep.Stored)
		}
		st, err := os.Stat(s.Path)
		if err != nil || st.Size() != size {
			t.Fatalf("%s: %v, size %d", s.Path, err, st.Size())
		}
		if i == 0 {
			ino = inode(st)
		} else if inode(st) != ino {
			t.Errorf("%s is a copy, not a link of the spool", s.Path)
		}
	}
	t.Logf("delivering %d bytes into 2 folders wrote %d bytes", size, written)
	// Small writes besides the message: folder metadata (subscriptions,
	// maildirfolder), logs.
	if written < size || written > size+64<<10 {
		t.Errorf("delivering a %d-byte message wrote %d bytes, want it written once", size, written)
	}
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
