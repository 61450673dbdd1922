package vacation

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
)

type sent struct {
	from string
	to   []string
	msg  []byte
}

// recorder is a Sender that keeps what it was given, or fails.
type recorder struct {
	mu   sync.Mutex
	msgs []sent
	fail error
}

func (r *recorder) Send(ctx context.Context, from string, to []string, msg io.Reader) error {
	b, err := io.ReadAll(msg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.msgs = append(r.msgs, sent{from, to, b})
	return nil
}

func newHandler(t *testing.T, rec *recorder, mod func(*config.Vacation)) (*Handler, *bytes.Buffer) {
	c := config.Default().Vacation
	if mod != nil {
		mod(&c)
	}
	var logs bytes.Buffer
	return &Handler{Options: OptionsFromConfig(c, "+"), Sender: rec,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, &logs
}

func delivery(t *testing.T, dir, from, hdr string) Delivery {
	return Delivery{Dir: dir, Envelope: engine.Envelope{From: from, To: "alice@example.org"}, Header: header(t, hdr)}
}

const plainHdr = "From: Bob <bob@example.com>\nTo: alice@example.org\nSubject: hi\nMessage-ID: <1@example.com>\n"

func TestHandlerSendsOnceWithinPeriod(t *testing.T) {
	rec := &recorder{}
	h, logs := newHandler(t, rec, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.Now = func() time.Time { return now }
	dir := t.TempDir()
	act := &Action{Period: day, Handle: "h", Reason: "away"}
	ctx := context.Background()

	out := h.Handle(ctx, delivery(t, dir, "bob@example.com", plainHdr), act)
	if !out.Sent || len(rec.msgs) != 1 {
		t.Fatalf("first message: outcome %+v, %d sent; logs:\n%s", out, len(rec.msgs), logs)
	}
	m := rec.msgs[0]
	if m.from != "" || len(m.to) != 1 || m.to[0] != "bob@example.com" {
		t.Errorf("envelope MAIL FROM %q RCPT %v, want <> and bob@example.com", m.from, m.to)
	}
	if !bytes.Contains(m.msg, []byte("Auto-Submitted: auto-replied (vacation)\r\n")) {
		t.Errorf("reply lacks Auto-Submitted:\n%s", m.msg)
	}
	if !strings.Contains(logs.String(), "reply sent") {
		t.Errorf("send not logged:\n%s", logs)
	}

	now = now.Add(23 * time.Hour)
	out = h.Handle(ctx, delivery(t, dir, "BOB@example.com", plainHdr), act)
	if out.Sent || out.Skip == nil || out.Skip.Rule != RuleAlreadyAnswered {
		t.Fatalf("second message within the period: %+v", out)
	}
	if !strings.Contains(logs.String(), "rule=already-answered") {
		t.Errorf("skip not logged with its rule:\n%s", logs)
	}
	if out := h.Handle(ctx, delivery(t, dir, "bob@example.com", plainHdr), &Action{Period: day, Handle: "other", Reason: "x"}); !out.Sent {
		t.Errorf("another handle did not reply: %+v", out)
	}

	now = now.Add(2 * time.Hour)
	if out := h.Handle(ctx, delivery(t, dir, "bob@example.com", plainHdr), act); !out.Sent {
		t.Fatalf("after the period: %+v", out)
	}
	if len(rec.msgs) != 3 {
		t.Fatalf("%d replies, want 3", len(rec.msgs))
	}
}

func TestHandlerFailedSendIsNotRemembered(t *testing.T) {
	rec := &recorder{fail: errors.New("451 try later")}
	h, logs := newHandler(t, rec, nil)
	dir := t.TempDir()
	act := &Action{Period: day, Handle: "h", Reason: "away"}
	out := h.Handle(context.Background(), delivery(t, dir, "bob@example.com", plainHdr), act)
	if out.Sent || out.Err == nil {
		t.Fatalf("failed send: %+v", out)
	}
	if !strings.Contains(logs.String(), "451 try later") {
		t.Errorf("failure not logged:\n%s", logs)
	}
	rec.fail = nil
	if out := h.Handle(context.Background(), delivery(t, dir, "bob@example.com", plainHdr), act); !out.Sent {
		t.Fatalf("retry after a failed send: %+v", out)
	}
}

func TestHandlerSendFromRecipientAndAliases(t *testing.T) {
	rec := &recorder{}
	h, logs := newHandler(t, rec, func(c *config.Vacation) {
		c.SendFromRecipient = true
		c.Aliases = map[string][]string{"Alice@example.org": {"a.smith@example.net"}}
	})
	d := delivery(t, t.TempDir(), "bob@example.com", "From: bob@example.com\nTo: A <a.smith@example.net>\n")
	d.Envelope.To = "alice+work@example.org"
	out := h.Handle(context.Background(), d, &Action{Period: day, Handle: "h", Reason: "away"})
	if !out.Sent {
		t.Fatalf("alias in To: %+v\n%s", out, logs)
	}
	if got := rec.msgs[0].from; got != "a.smith@example.net" {
		t.Errorf("MAIL FROM %q, want the matched alias", got)
	}
	if !bytes.Contains(rec.msgs[0].msg, []byte("From: <a.smith@example.net>\r\n")) {
		t.Errorf("From is not the matched alias:\n%s", rec.msgs[0].msg)
	}
}

func TestHandlerSkipsAreLoggedAtInfo(t *testing.T) {
	rec := &recorder{}
	h, logs := newHandler(t, rec, nil)
	out := h.Handle(context.Background(), delivery(t, t.TempDir(), "bob@example.com", plainHdr+"Precedence: bulk\n"),
		&Action{Period: day, Handle: "h", Reason: "away"})
	if out.Skip == nil || out.Skip.Rule != RulePrecedence || len(rec.msgs) != 0 {
		t.Fatalf("Precedence: bulk: %+v", out)
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "Precedence: bulk") {
		t.Errorf("skip reason not logged at info:\n%s", logs)
	}
}

func TestHandlerParallelOneReply(t *testing.T) {
	rec := &recorder{}
	h, _ := newHandler(t, rec, nil)
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Handle(context.Background(), delivery(t, dir, "bob@example.com", plainHdr), &Action{Period: day, Handle: "h", Reason: "away"})
		}()
	}
	wg.Wait()
	if len(rec.msgs) != 1 {
		t.Fatalf("%d replies from 20 parallel deliveries, want 1", len(rec.msgs))
	}
}

// Every skip rule, reached through Handle, is logged once at info level
// with its rule name and a reason, and sends nothing.
func TestHandlerEverySkipLoggedAtInfo(t *testing.T) {
	received := strings.Repeat("Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n", 11)
	cases := []struct {
		rule      Rule
		from, to  string
		hdr       string
		addresses []string
		reason    string // substring of the logged message
	}{
		{rule: RuleNullRecipient, from: "bob@example.com", to: "", hdr: plainHdr, reason: "recipient is <>"},
		{rule: RuleNullSender, from: "", hdr: plainHdr, reason: "sender is <>"},
		{rule: RuleOwnAddress, from: "alice@example.org", hdr: plainHdr, reason: "own address"},
		{rule: RuleAddresses, from: "bob@example.com", hdr: plainHdr, addresses: []string{"bob@example.com"}, reason: ":addresses"},
		{rule: RuleAlreadyAnswered, from: "bob@example.com", hdr: plainHdr, reason: "already answered"},
		{rule: RuleListHeader, from: "bob@example.com", hdr: plainHdr + "List-Id: <l.example.com>\n", reason: "List-Id"},
		{rule: RuleAutoSubmitted, from: "bob@example.com", hdr: plainHdr + "Auto-Submitted: auto-generated\n", reason: "Auto-Submitted: auto-generated"},
		{rule: RulePrecedence, from: "bob@example.com", hdr: plainHdr + "Precedence: junk\n", reason: "Precedence: junk"},
		{rule: RuleSuppress, from: "bob@example.com", hdr: plainHdr + "X-Auto-Response-Suppress: OOF\n", reason: "X-Auto-Response-Suppress: OOF"},
		{rule: RuleSystemSender, from: "MAILER-DAEMON@example.com", hdr: plainHdr, reason: "system address"},
		{rule: RuleNoReplySender, from: "no-reply@example.com", hdr: plainHdr, reason: "no-reply address"},
		{rule: RuleTooManyReceived, from: "bob@example.com", hdr: plainHdr + received, reason: "11 Received"},
		{rule: RuleNotAddressed, from: "bob@example.com", hdr: "From: bob@example.com\nTo: team@example.org\n", reason: "alias, a list or Bcc"},
	}
	for _, tc := range cases {
		t.Run(string(tc.rule), func(t *testing.T) {
			rec := &recorder{}
			h, logs := newHandler(t, rec, nil)
			dir := t.TempDir()
			act := &Action{Period: day, Handle: "h", Reason: "away", Addresses: tc.addresses}
			d := delivery(t, dir, tc.from, tc.hdr)
			d.Envelope.To = tc.to
			if tc.to == "" && tc.rule != RuleNullRecipient {
				d.Envelope.To = "alice@example.org"
			}
			if tc.rule == RuleAlreadyAnswered {
				if out := h.Handle(context.Background(), d, act); !out.Sent {
					t.Fatalf("first message not answered: %+v", out)
				}
				logs.Reset()
			}
			sentBefore := len(rec.msgs)
			out := h.Handle(context.Background(), d, act)
			if out.Skip == nil || out.Skip.Rule != tc.rule || out.Sent || len(rec.msgs) != sentBefore {
				t.Fatalf("outcome %+v (sent %d), want a skip by %s", out, len(rec.msgs)-sentBefore, tc.rule)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one log line, got:\n%s", logs)
			}
			l := lines[0]
			if !strings.Contains(l, "level=INFO") || !strings.Contains(l, "rule="+string(tc.rule)) || !strings.Contains(l, tc.reason) {
				t.Errorf("log line %q: want level=INFO, rule=%s and %q", l, tc.rule, tc.reason)
			}
		})
	}
}
