package vacation

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

func header(t *testing.T, s string) textproto.Header {
	t.Helper()
	s = strings.ReplaceAll(s, "\n", "\r\n") + "\r\n"
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(s)))
	if err != nil {
		t.Fatalf("header %q: %v", s, err)
	}
	return h
}

func TestCheckRules(t *testing.T) {
	base := "From: Bob <bob@example.com>\nTo: Alice <alice@example.org>\nSubject: hi\n"
	pol := Policy{CheckRecipient: true, MaxReceived: 10, SubaddressSeparators: "+",
		NoReplyLocalParts: []string{"noreply", "no-reply", "donotreply"}}
	for _, tc := range []struct {
		name      string
		pol       *Policy
		sender    string
		rcpt      string
		user      string
		orig      string
		hdr       string
		addresses []string
		answered  bool
		want      Rule // "" = reply
		wantFrom  string
		wantEnv   string
	}{
		{name: "reply", hdr: base, wantFrom: "alice@example.org", wantEnv: "alice@example.org"},
		{name: "null recipient", rcpt: "<>", hdr: base, want: RuleNullRecipient},
		{name: "null sender", sender: "<>", hdr: base, want: RuleNullSender},
		{name: "own address", sender: "ALICE@example.org", hdr: base, want: RuleOwnAddress},
		{name: "own base address", sender: "alice@example.org", rcpt: "alice+x@example.org", hdr: base, want: RuleOwnAddress},
		{name: "own alias", sender: "a.smith@example.net", pol: &Policy{Aliases: []string{"a.smith@example.net"}}, hdr: base, want: RuleOwnAddress},
		{name: ":addresses", sender: "Bob@Example.com", addresses: []string{"bob@example.com"}, hdr: base, want: RuleAddresses},
		{name: "already answered", hdr: base, answered: true, want: RuleAlreadyAnswered},
		{name: "already answered before list", hdr: base + "List-Id: <x.example.com>\n", answered: true, want: RuleAlreadyAnswered},
		{name: "List-Id", hdr: base + "List-Id: <x.example.com>\n", want: RuleListHeader},
		{name: "List-Owner", hdr: base + "List-Owner: <mailto:o@x>\n", want: RuleListHeader},
		{name: "List-Subscribe", hdr: base + "List-Subscribe: <mailto:s@x>\n", want: RuleListHeader},
		{name: "List-Post", hdr: base + "List-Post: NO\n", want: RuleListHeader},
		{name: "List-Unsubscribe", hdr: base + "List-Unsubscribe: <mailto:u@x>\n", want: RuleListHeader},
		{name: "List-Help", hdr: base + "List-Help: <mailto:h@x>\n", want: RuleListHeader},
		{name: "List-Archive", hdr: base + "List-Archive: <http://x>\n", want: RuleListHeader},
		{name: "Auto-Submitted auto-replied", hdr: base + "Auto-Submitted: auto-replied\n", want: RuleAutoSubmitted},
		{name: "Auto-Submitted auto-generated", hdr: base + "Auto-Submitted: auto-generated\n", want: RuleAutoSubmitted},
		{name: "Auto-Submitted no", hdr: base + "Auto-Submitted: No\n", wantFrom: "alice@example.org"},
		{name: "Auto-Submitted second field", hdr: base + "Auto-Submitted: no\nAuto-Submitted: yes\n", want: RuleAutoSubmitted},
		{name: "Precedence junk", hdr: base + "Precedence: junk\n", want: RulePrecedence},
		{name: "Precedence bulk", hdr: base + "Precedence: BULK\n", want: RulePrecedence},
		{name: "Precedence list", hdr: base + "Precedence: list\n", want: RulePrecedence},
		{name: "Precedence first-class", hdr: base + "Precedence: first-class\n", wantFrom: "alice@example.org"},
		{name: "X-Auto-Response-Suppress All", hdr: base + "X-Auto-Response-Suppress: All\n", want: RuleSuppress},
		{name: "X-Auto-Response-Suppress OOF in list", hdr: base + "X-Auto-Response-Suppress: DR, oof\n", want: RuleSuppress},
		{name: "X-Auto-Response-Suppress DR only", hdr: base + "X-Auto-Response-Suppress: DR, RN\n", wantFrom: "alice@example.org"},
		{name: "MAILER-DAEMON", sender: "mailer-daemon@example.com", hdr: base, want: RuleSystemSender},
		{name: "LISTSERV", sender: "listserv@example.com", hdr: base, want: RuleSystemSender},
		{name: "majordomo", sender: "Majordomo@example.com", hdr: base, want: RuleSystemSender},
		{name: "-request", sender: "users-request@example.com", hdr: base, want: RuleSystemSender},
		{name: "owner-", sender: "owner-users@example.com", hdr: base, want: RuleSystemSender},
		{name: "Owner- is not system (Pigeonhole compares case-sensitively)", sender: "Owner-users@example.com", hdr: base, wantFrom: "alice@example.org"},
		{name: "noreply", sender: "noreply@example.com", hdr: base, want: RuleNoReplySender},
		{name: "no-reply with suffix", sender: "No-Reply.alerts@example.com", hdr: base, want: RuleNoReplySender},
		{name: "noreply with detail", sender: "donotreply+123@example.com", hdr: base, want: RuleNoReplySender},
		{name: "noreplyish is a person", sender: "noreplyson@example.com", hdr: base, wantFrom: "alice@example.org"},
		{name: "no-reply with - as a subaddress separator", pol: &Policy{CheckRecipient: true, NoReplyLocalParts: []string{"no-reply"}, SubaddressSeparators: "+-"}, sender: "no-reply@example.com", hdr: base, want: RuleNoReplySender},
		{name: "noreply rule off", pol: &Policy{CheckRecipient: true}, sender: "noreply@example.com", hdr: base, wantFrom: "alice@example.org"},
		{name: "too many Received", hdr: base + strings.Repeat("Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n", 11), want: RuleTooManyReceived},
		{name: "ten Received", hdr: base + strings.Repeat("Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n", 10), wantFrom: "alice@example.org"},
		{name: "not addressed (Bcc via alias)", hdr: "From: bob@example.com\nTo: team@example.org\n", want: RuleNotAddressed},
		{name: "no To at all", hdr: "From: bob@example.com\nSubject: x\n", want: RuleNotAddressed},
		{name: "Cc", hdr: "From: bob@example.com\nTo: carol@example.org\nCc: x@y.z, Alice <ALICE@EXAMPLE.ORG>\n", wantFrom: "alice@example.org"},
		{name: "Bcc", hdr: "From: bob@example.com\nTo: carol@example.org\nBcc: alice@example.org\n", wantFrom: "alice@example.org"},
		{name: "Resent-To", hdr: "From: bob@example.com\nTo: carol@example.org\nResent-To: alice@example.org\n", wantFrom: "alice@example.org"},
		{name: "Resent-Cc", hdr: "From: bob@example.com\nResent-Cc: alice@example.org\n", wantFrom: "alice@example.org"},
		{name: "Resent-Bcc", hdr: "From: bob@example.com\nResent-Bcc: alice@example.org\n", wantFrom: "alice@example.org"},
		{name: "group syntax", hdr: "From: bob@example.com\nTo: friends: carol@example.org, alice@example.org;\n", wantFrom: "alice@example.org"},
		{name: "detail in envelope, base in To", rcpt: "alice+work@example.org", hdr: base, wantFrom: "alice@example.org", wantEnv: "alice@example.org"},
		{name: "detail in To, base in envelope", hdr: "From: bob@example.com\nTo: alice+shop@example.org\n", wantFrom: "alice+shop@example.org", wantEnv: "alice@example.org"},
		{name: ":addresses in To", addresses: []string{"info@example.org"}, hdr: "From: bob@example.com\nTo: Info <info@example.org>\n", wantFrom: "info@example.org", wantEnv: "alice@example.org"},
		{name: "alias in To", pol: &Policy{CheckRecipient: true, Aliases: []string{"a.smith@example.net"}}, hdr: "From: bob@example.com\nTo: a.smith@example.net\n", wantFrom: "a.smith@example.net", wantEnv: "a.smith@example.net"},
		{name: "original recipient ignored by default", orig: "sales@example.org", hdr: "From: bob@example.com\nTo: sales@example.org\n", want: RuleNotAddressed},
		{name: "original recipient when enabled", pol: &Policy{CheckRecipient: true, UseOriginalRecipient: true}, orig: "sales@example.org", hdr: "From: bob@example.com\nTo: sales@example.org\n", wantFrom: "sales@example.org"},
		{name: "recipient check off", pol: &Policy{}, hdr: "From: bob@example.com\nTo: team@example.org\n", wantFrom: "alice@example.org"},
		{name: "a user of her own is not the detail of another", rcpt: "mary-jane@example.org", user: "mary-jane@example.org", pol: &Policy{CheckRecipient: true, SubaddressSeparators: "+-"},
			sender: "mary@example.org", hdr: "From: mary@example.org\nTo: mary-jane@example.org\n", wantFrom: "mary-jane@example.org"},
		{name: "detail of the resolved user", rcpt: "mary-jane@example.org", user: "mary-jane@example.org", pol: &Policy{CheckRecipient: true, SubaddressSeparators: "+-"},
			hdr: "From: bob@example.com\nTo: mary-jane+x@example.org\n", wantFrom: "mary-jane+x@example.org"},
		{name: "a longer local part is not a detail", hdr: "From: bob@example.com\nTo: alicex@example.org\n", want: RuleNotAddressed},
		{name: "a detail at another domain is not the user's", hdr: "From: bob@example.com\nTo: alice+x@example.net\n", want: RuleNotAddressed},
		{name: "unparsable To item", hdr: "From: bob@example.com\nTo: @@@, alice@example.org\n", wantFrom: "alice@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pol
			if tc.pol != nil {
				p = *tc.pol
				if p.SubaddressSeparators == "" {
					p.SubaddressSeparators = "+"
				}
			}
			req := Request{Sender: "bob@example.com", Recipient: "alice@example.org", User: tc.user, OriginalRecipient: tc.orig,
				Header: header(t, tc.hdr), Action: &Action{Addresses: tc.addresses, Handle: "h"}}
			if tc.sender != "" {
				req.Sender = tc.sender
			}
			if tc.sender == "<>" {
				req.Sender = ""
			}
			if tc.rcpt != "" {
				req.Recipient = tc.rcpt
			}
			if tc.rcpt == "<>" {
				req.Recipient = ""
			}
			asked := false
			d, err := p.Check(req, func() (bool, error) { asked = true; return tc.answered, nil })
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if d.Skip != nil {
					t.Fatalf("skipped (%s), want a reply", d.Skip)
				}
				if !asked {
					t.Error("the store was not asked whether the sender was answered")
				}
				if tc.wantFrom != "" && d.ReplyFrom != tc.wantFrom {
					t.Errorf("ReplyFrom = %q, want %q", d.ReplyFrom, tc.wantFrom)
				}
				if tc.wantEnv != "" && d.EnvelopeFrom != tc.wantEnv {
					t.Errorf("EnvelopeFrom = %q, want %q", d.EnvelopeFrom, tc.wantEnv)
				}
				return
			}
			if d.Skip == nil {
				t.Fatalf("reply, want skip %s", tc.want)
			}
			if d.Skip.Rule != tc.want {
				t.Fatalf("skip %s, want %s", d.Skip, tc.want)
			}
			if d.Skip.Reason == "" {
				t.Error("skip without a reason to log")
			}
		})
	}
}

func TestCheckStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := Policy{}.Check(Request{Sender: "b@x", Recipient: "a@y", Header: header(t, "To: a@y\n")},
		func() (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestNotAddressedReasonNamesAddresses(t *testing.T) {
	p := Policy{CheckRecipient: true, SubaddressSeparators: "+", Aliases: []string{"a@alias.example"}}
	d, _ := p.Check(Request{Sender: "bob@example.com", Recipient: "alice+x@example.org",
		Header: header(t, "To: team@example.org\n"), Action: &Action{Addresses: []string{"info@example.org"}}}, nil)
	if d.Skip == nil {
		t.Fatal("want a skip")
	}
	for _, want := range []string{"alice+x@example.org", "alice@example.org", "a@alias.example", "info@example.org", "To, Cc, Bcc"} {
		if !strings.Contains(d.Skip.Reason, want) {
			t.Errorf("reason %q does not mention %q", d.Skip.Reason, want)
		}
	}
}
