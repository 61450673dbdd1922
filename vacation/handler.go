package vacation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
)

// Sender sends one message; package sender implements it (sendmail or an
// SMTP relay). from "" is the null reverse-path <>.
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg io.Reader) error
}

// Options are the site's vacation settings.
type Options struct {
	Policy            Policy              // Aliases are per user: see Aliases
	Aliases           map[string][]string // user address (lower case) -> more addresses
	SendFromRecipient bool                // MAIL FROM the user's address instead of <>
	DefaultSubject    string
	MaxEntries        int
	SendTimeout       time.Duration
	Periods           Periods
}

// OptionsFromConfig maps the [vacation] section.
func OptionsFromConfig(c config.Vacation, subaddressSeparators string) Options {
	if subaddressSeparators == "" {
		subaddressSeparators = "+"
	}
	aliases := make(map[string][]string, len(c.Aliases))
	for k, v := range c.Aliases {
		k = strings.ToLower(normalizeAddr(k))
		aliases[k] = append(aliases[k], v...)
	}
	return Options{
		Policy: Policy{
			CheckRecipient:       c.CheckRecipient,
			UseOriginalRecipient: c.UseOriginalRecipient,
			MaxReceived:          c.MaxReceived,
			NoReplyLocalParts:    c.NoReplySenders,
			SubaddressSeparators: subaddressSeparators,
		},
		Aliases:           aliases,
		SendFromRecipient: c.SendFromRecipient,
		DefaultSubject:    c.DefaultSubject,
		MaxEntries:        c.MaxEntries,
		SendTimeout:       c.SendTimeout,
		Periods:           Periods{Min: c.MinPeriod, Default: c.DefaultPeriod, Max: c.MaxPeriod},
	}
}

// Handler decides, sends and remembers vacation replies; sieve-lda calls
// it for every engine.ExtensionAction whose Extension is "vacation".
type Handler struct {
	Options
	Sender Sender
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// Delivery is the delivery a vacation action belongs to.
type Delivery struct {
	Dir      string // the user's vacation/ state directory
	User     string // the user's address without detail (key of Options.Aliases); "" derives it from Envelope.To
	Envelope engine.Envelope
	Header   textproto.Header // of the message being delivered
}

// Outcome says what Handle did; it never changes the delivery.
type Outcome struct {
	Sent  bool
	Skip  *Skip  // why no reply was sent, when that was a rule
	Err   error  // why no reply was sent, when something failed
	Reply *Reply // the reply, when one was composed
}

// Handle processes one vacation action: applies the rules, and unless one
// says no, composes the reply, sends it and remembers the sender. The
// per-user lock is held from the "already answered" check until the sender
// is remembered, so parallel deliveries from one sender send one reply; the
// sender is remembered only after a successful send, so a failed send is
// retried by the next message. Errors are logged and returned in the
// Outcome, never as a failure of the delivery.
func (h *Handler) Handle(ctx context.Context, d Delivery, act *Action) (out Outcome) {
	log := h.Logger
	if log == nil {
		log = slog.Default()
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	timeout := h.SendTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	env := d.Envelope
	attrs := []any{"sender", env.From, "recipient", env.To, "handle", act.Handle}
	pol := h.PolicyFor(d.User, env.To)

	store := NewStore(d.Dir, h.MaxEntries)
	store.now = now
	var tx *Tx
	defer func() {
		if tx != nil {
			tx.Close()
		}
	}()
	answered := func() (bool, error) {
		var err error
		if tx, err = store.Lock(ctx); err != nil {
			return false, err
		}
		return tx.Answered(env.From, act.Handle), nil
	}
	dec, err := pol.Check(Request{Sender: env.From, Recipient: env.To, User: d.User, OriginalRecipient: env.OriginalTo,
		Header: d.Header, Action: act}, answered)
	if err != nil {
		log.Error("vacation: no reply: cannot read the state of answered senders", append(attrs, "err", err)...)
		return Outcome{Err: err}
	}
	if dec.Skip != nil {
		log.Info("vacation: no reply: "+dec.Skip.Reason, append(attrs, "rule", string(dec.Skip.Rule))...)
		return Outcome{Skip: dec.Skip}
	}
	reply, err := Compose(ComposeInput{Action: act, Original: d.Header, Sender: env.From,
		ReplyFrom: dec.ReplyFrom, Now: now(), DefaultSubject: h.DefaultSubject})
	if err != nil {
		log.Error("vacation: no reply: cannot compose it", append(attrs, "err", err)...)
		return Outcome{Err: err}
	}
	mailFrom := ""
	if h.SendFromRecipient {
		mailFrom = dec.EnvelopeFrom
	}
	if h.Sender == nil {
		log.Warn("vacation: no reply: no sender is configured", attrs...)
		return Outcome{Reply: reply}
	}
	if err := h.Sender.Send(ctx, mailFrom, []string{reply.To}, bytes.NewReader(reply.Message)); err != nil {
		log.Error("vacation: sending the reply failed; the sender is not remembered", append(attrs, "err", err)...)
		return Outcome{Err: err, Reply: reply}
	}
	if tx == nil { // cannot happen: rule 5 runs before any reply
		return Outcome{Sent: true, Reply: reply}
	}
	if err := tx.Mark(env.From, act.Handle, now().Add(act.Period)); err != nil {
		log.Error("vacation: reply sent but the sender could not be remembered", append(attrs, "err", err)...)
		return Outcome{Sent: true, Err: err, Reply: reply}
	}
	log.Info("vacation: reply sent", append(attrs, "mail_from", "<"+mailFrom+">", "from", dec.ReplyFrom,
		"until", now().Add(act.Period).UTC().Format(time.RFC3339))...)
	return Outcome{Sent: true, Reply: reply}
}

// PolicyFor is the Policy of one delivery: the site's rules plus the
// aliases configured for the user. user is the user's address without
// detail as the delivery agent resolved it ("" derives it from rcpt), rcpt
// the envelope recipient.
func (o Options) PolicyFor(user, rcpt string) Policy {
	if user == "" {
		user = rcpt
	}
	pol := o.Policy
	pol.Aliases = append(append([]string(nil), pol.Aliases...), o.aliases(user, rcpt)...)
	return pol
}

func (o Options) aliases(user, rcpt string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range []string{user, rcpt, baseAddr(rcpt, o.Policy.SubaddressSeparators)} {
		k = strings.ToLower(normalizeAddr(k))
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, o.Aliases[k]...)
	}
	return out
}

// HandleAction is Handle for an engine.ExtensionAction (the delivery
// agent's hook). The error is the Outcome's, already logged.
func (h *Handler) HandleAction(ctx context.Context, d Delivery, a engine.ExtensionAction) error {
	act, ok := a.Value.(*Action)
	if !ok || a.Extension != ExtensionName {
		return fmt.Errorf("vacation: not a vacation action: %s", engine.String(a))
	}
	return h.Handle(ctx, d, act).Err
}
