package vacation

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Action is one vacation command after variable expansion: the Value of the
// engine.ExtensionAction (Extension "vacation") a script run produces.
type Action struct {
	Period    time.Duration // clamped to the configured limits at compile time
	Subject   string        // :subject, "" = "Auto: <original subject>"
	From      string        // :from, "" = the user's address that matched
	Addresses []string      // :addresses
	Mime      bool          // :mime: Reason is a MIME entity
	Handle    string        // :handle, or the default derived at compile time
	Reason    string
}

func (a *Action) String() string {
	return fmt.Sprintf("vacation period=%s handle=%q", a.Period, a.Handle)
}

// Rule names one reason not to send a reply. The values appear in logs.
type Rule string

// The rules, in the order they are checked (Pigeonhole's order, with this
// project's additions before the recipient check).
const (
	RuleNullRecipient   Rule = "null-recipient"
	RuleNullSender      Rule = "null-sender"
	RuleOwnAddress      Rule = "own-address"
	RuleAddresses       Rule = "addresses"
	RuleAlreadyAnswered Rule = "already-answered"
	RuleListHeader      Rule = "list-header"
	RuleAutoSubmitted   Rule = "auto-submitted"
	RulePrecedence      Rule = "precedence"
	RuleSuppress        Rule = "x-auto-response-suppress"
	RuleSystemSender    Rule = "system-sender"
	RuleNoReplySender   Rule = "noreply-sender"
	RuleTooManyReceived Rule = "too-many-received"
	RuleNotAddressed    Rule = "not-addressed"
)

// Skip says why no reply is sent.
type Skip struct {
	Rule   Rule
	Reason string // a sentence for the log
}

func (s *Skip) String() string { return string(s.Rule) + ": " + s.Reason }

// Policy is the administrator's part of the decision (config [vacation]
// plus the user's aliases).
type Policy struct {
	// CheckRecipient enables rule 11: one of the user's addresses must be
	// in To, Cc, Bcc, Resent-To, Resent-Cc or Resent-Bcc.
	CheckRecipient bool
	// UseOriginalRecipient counts the original recipient (dovecot-lda -a)
	// as the user's address.
	UseOriginalRecipient bool
	// Aliases are more addresses of this user.
	Aliases []string
	// MaxReceived: more Received header fields than this means a mail loop
	// (0: no limit).
	MaxReceived int
	// NoReplyLocalParts: senders whose local part is one of these (or starts
	// with one followed by '-', '.', '_' or '+') get no reply. Empty: off.
	NoReplyLocalParts []string
	// SubaddressSeparators separate user and detail (RFC 5233), e.g. "+".
	SubaddressSeparators string
}

// Request is one message and one vacation action to decide on.
type Request struct {
	Sender    string // envelope sender (MAIL FROM), "" = null
	Recipient string // envelope recipient as delivered
	// User is the user's address without detail as the delivery agent
	// resolved it ("mary-jane@" may be a user of her own, not mary's
	// detail); "" derives it from Recipient.
	User              string
	OriginalRecipient string // dovecot-lda -a, may be ""
	Header            textproto.Header
	Action            *Action
}

// Decision is the outcome of Policy.Check.
type Decision struct {
	Skip *Skip // nil: send a reply
	// ReplyFrom is the user's address that matched the message's header
	// fields: the reply's From when the script gave no :from.
	ReplyFrom string
	// EnvelopeFrom is the user's address to use as MAIL FROM when replies are
	// not sent from the null sender. Never a script-supplied :addresses
	// value, so a script cannot choose the SMTP sender.
	EnvelopeFrom string
}

var listHeaders = []string{"List-Id", "List-Owner", "List-Subscribe", "List-Post",
	"List-Unsubscribe", "List-Help", "List-Archive"}

var myAddressHeaders = []string{"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"}

// Check applies the rules in order; the first match wins. answered is
// consulted at rule 5 (already answered this sender for this handle); it
// may be nil (never answered).
func (p Policy) Check(req Request, answered func() (bool, error)) (Decision, error) {
	var d Decision
	skip := func(r Rule, format string, args ...any) (Decision, error) {
		d.Skip = &Skip{Rule: r, Reason: fmt.Sprintf(format, args...)}
		return d, nil
	}
	sender := normalizeAddr(req.Sender)
	rcpt := normalizeAddr(req.Recipient)
	user := normalizeAddr(req.User)
	if user == "" {
		user = baseAddr(rcpt, p.SubaddressSeparators)
	}
	orig := ""
	if p.UseOriginalRecipient {
		orig = normalizeAddr(req.OriginalRecipient)
	}
	act := req.Action
	if act == nil {
		act = &Action{}
	}

	// 1, 2: null recipient, null sender.
	if rcpt == "" {
		return skip(RuleNullRecipient, "envelope recipient is <>")
	}
	if sender == "" {
		return skip(RuleNullSender, "envelope sender is <> (no reply to bounces)")
	}
	// 3: our own address.
	for _, own := range p.ownAddresses(rcpt, user, orig) {
		if sameAddr(sender, own) {
			return skip(RuleOwnAddress, "sender <%s> is the user's own address <%s>", sender, own)
		}
	}
	// 4: one of :addresses.
	for _, a := range act.Addresses {
		if sameAddr(sender, a) {
			return skip(RuleAddresses, "sender <%s> is one of the user's :addresses", sender)
		}
	}
	// 5: already answered.
	if answered != nil {
		yes, err := answered()
		if err != nil {
			return d, err
		}
		if yes {
			return skip(RuleAlreadyAnswered, "<%s> was already answered for handle %q within the period", sender, act.Handle)
		}
	}
	h := req.Header
	// 6: mailing lists.
	for _, k := range listHeaders {
		if h.Has(k) {
			return skip(RuleListHeader, "message from <%s> has a %s header (mailing list)", sender, k)
		}
	}
	// 7: automatic messages.
	for _, v := range h.Values("Auto-Submitted") {
		if v = unfold(v); !strings.EqualFold(v, "no") {
			return skip(RuleAutoSubmitted, "message from <%s> has Auto-Submitted: %s", sender, clip(v))
		}
	}
	// 8: bulk mail.
	for _, v := range h.Values("Precedence") {
		switch v = unfold(v); strings.ToLower(v) {
		case "junk", "bulk", "list":
			return skip(RulePrecedence, "message from <%s> has Precedence: %s", sender, clip(v))
		}
	}
	// 9: Microsoft's suppression header.
	for _, v := range h.Values("X-Auto-Response-Suppress") {
		for _, flag := range strings.Split(unfold(v), ",") {
			flag = strings.TrimSpace(flag)
			if strings.EqualFold(flag, "All") || strings.EqualFold(flag, "OOF") {
				return skip(RuleSuppress, "message from <%s> has X-Auto-Response-Suppress: %s", sender, flag)
			}
		}
	}
	// 10: system senders. Pigeonhole compares "-request" and "owner-"
	// case-sensitively; so do we, to agree with it.
	local, _, _ := splitAddr(sender)
	if strings.EqualFold(local, "MAILER-DAEMON") || strings.EqualFold(local, "LISTSERV") ||
		strings.EqualFold(local, "majordomo") || strings.Contains(local, "-request") ||
		strings.HasPrefix(local, "owner-") {
		return skip(RuleSystemSender, "sender <%s> is a system address", sender)
	}
	// Additions: no-reply senders and mail loops.
	if np := p.noReply(local); np != "" {
		return skip(RuleNoReplySender, "sender <%s> is a no-reply address (rule %q)", sender, np)
	}
	if n := len(h.Values("Received")); p.MaxReceived > 0 && n > p.MaxReceived {
		return skip(RuleTooManyReceived, "message from <%s> has %d Received header fields (limit %d): probably a mail loop", sender, n, p.MaxReceived)
	}
	// 11: the message must be addressed to the user.
	d.EnvelopeFrom = rcpt
	if !p.CheckRecipient {
		d.ReplyFrom = rcpt
		return d, nil
	}
	from, envFrom, ok := p.addressedTo(h, rcpt, user, orig, act.Addresses)
	if !ok {
		return skip(RuleNotAddressed, "none of %s contains the user's addresses (%s); the message reached <%s> through an alias, a list or Bcc",
			strings.Join(myAddressHeaders, ", "), strings.Join(p.userAddresses(rcpt, user, orig, act.Addresses), ", "), rcpt)
	}
	d.ReplyFrom, d.EnvelopeFrom = from, envFrom
	return d, nil
}

// clip bounds a header value quoted in a log line.
func clip(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return s
}

// ownAddresses are the user's own addresses (without the script's
// :addresses): the envelope recipient, the user's address without detail,
// the original recipient when enabled, and the aliases.
func (p Policy) ownAddresses(rcpt, user, orig string) []string {
	out := []string{rcpt}
	if user != "" && !sameAddr(user, rcpt) {
		out = append(out, user)
	}
	if orig != "" {
		out = append(out, orig)
	}
	for _, a := range p.Aliases {
		if a = normalizeAddr(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (p Policy) userAddresses(rcpt, user, orig string, addresses []string) []string {
	out := p.ownAddresses(rcpt, user, orig)
	for _, a := range addresses {
		out = append(out, normalizeAddr(a))
	}
	return out
}

// addressedTo looks for one of the user's addresses in To, Cc, Bcc and the
// Resent- variants, header by header like Pigeonhole. A +detail form of
// one of the user's own addresses in a header matches too (Pigeonhole 2.3
// does not, and stays silent for mail sent to alice+shop@; users expect a
// reply).
func (p Policy) addressedTo(h textproto.Header, rcpt, user, orig string, addresses []string) (from, envFrom string, ok bool) {
	own := p.ownAddresses(rcpt, user, orig)
	for _, k := range myAddressHeaders {
		vals := h.Values(k)
		if len(vals) == 0 {
			continue
		}
		addrs := headerAddresses(vals)
		for _, ha := range addrs {
			for _, a := range own {
				if sameAddr(ha.Address, a) {
					return a, a, true
				}
			}
		}
		for _, ha := range addrs {
			for _, a := range addresses {
				if sameAddr(ha.Address, a) {
					return normalizeAddr(a), rcpt, true
				}
			}
		}
		for _, ha := range addrs {
			for _, a := range own {
				if p.isDetailOf(ha.Address, a) {
					return ha.Address, rcpt, true
				}
			}
		}
	}
	return "", "", false
}

// isDetailOf reports whether addr is base with a detail:
// "alice+shop@example.org" of "alice@example.org".
func (p Policy) isDetailOf(addr, base string) bool {
	al, ad, ok1 := splitAddr(normalizeAddr(addr))
	bl, bd, ok2 := splitAddr(normalizeAddr(base))
	if !ok1 || !ok2 || !strings.EqualFold(ad, bd) || len(al) <= len(bl)+1 {
		return false
	}
	return strings.EqualFold(al[:len(bl)], bl) && strings.IndexByte(p.SubaddressSeparators, al[len(bl)]) >= 0
}

func (p Policy) noReply(local string) string {
	full := strings.ToLower(local)
	base := strings.TrimSuffix(strings.ToLower(baseAddr(local+"@x", p.SubaddressSeparators)), "@x")
	for _, np := range p.NoReplyLocalParts {
		np = strings.ToLower(np)
		if np == "" {
			continue
		}
		for _, l := range []string{full, base} {
			if l == np || (strings.HasPrefix(l, np) && strings.ContainsRune("-._+", rune(l[len(np)]))) {
				return np
			}
		}
	}
	return ""
}
