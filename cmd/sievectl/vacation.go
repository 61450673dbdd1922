package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sieved/sieved/cmd/internal/wiring"
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/storage"
	"github.com/sieved/sieved/vacation"
)

func init() {
	register(&command{
		name:    "vacation",
		summary: "list or forget the senders a user's vacation replies remember",
		run:     runVacation,
	})
	actionDescribers[vacation.ExtensionName] = describeVacation
}

const vacationHelp = `Shows and resets the memory of vacation auto-replies kept in
<storage root>/<domain>/<user>/vacation/ (the answered senders and, for
each, until when no new reply is sent to them).

  sievectl vacation list USER            senders answered, soonest expiry first
  sievectl vacation forget USER SENDER   forget SENDER (every handle): the next
                                         message from SENDER gets a reply again
  sievectl vacation forget USER          forget every sender (--all says the
                                         same explicitly)

USER is user@domain. Run it as the delivery user (the state files are
readable by that user only).`

func runVacation(ctx context.Context, st *stdio, args []string) int {
	fset := newFlagSet(st, "vacation", "[--config FILE] list USER | forget USER [SENDER | --all]", vacationHelp)
	cfgPath := fset.String("config", "", "read the storage root and vacation settings from this sieved `FILE` (TOML); default: built-in defaults")
	all := fset.Bool("all", false, "forget: forget every sender of USER")
	pos, code, ok := parseInterspersed(st, fset, args)
	if !ok {
		return code
	}
	if len(pos) < 2 {
		fmt.Fprintln(st.err, "sievectl vacation: need a subcommand (list, forget) and USER")
		fset.Usage()
		return exitUsage
	}
	sub, user := pos[0], pos[1]
	switch {
	case sub == "list" && len(pos) == 2 && !*all:
	case sub == "forget" && len(pos) == 3 && !*all:
	case sub == "forget" && len(pos) == 2: // every sender, with or without --all
	default:
		fmt.Fprintf(st.err, "sievectl vacation: bad arguments %q\n", strings.Join(pos, " "))
		fset.Usage()
		return exitUsage
	}
	cfg, code, ok := loadConfig(st, *cfgPath)
	if !ok {
		return code
	}
	if _, err := os.Stat(cfg.Storage.Root); err != nil {
		fmt.Fprintf(st.err, "sievectl vacation: storage root: %v\n", err)
		return exitNoInput
	}
	dir, err := vacationDir(cfg, user)
	if err != nil {
		fmt.Fprintf(st.err, "sievectl vacation: %v\n", err)
		return exitUsage
	}
	store := vacation.NewStore(dir, cfg.Vacation.MaxEntries)
	ctx, cancel := context.WithTimeout(ctx, cfg.Vacation.SendTimeout)
	defer cancel()
	switch sub {
	case "list":
		entries, err := store.List(ctx)
		if err != nil {
			fmt.Fprintf(st.err, "sievectl vacation: %v\n", err)
			return exitNoInput
		}
		if len(entries) == 0 {
			fmt.Fprintf(st.out, "%s: no senders remembered\n", user)
			return exitOK
		}
		w := tabwriter.NewWriter(st.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SENDER\tUNTIL\tHANDLE")
		for _, e := range entries {
			fmt.Fprintf(w, "%s\t%s\t%s\n", e.Sender, e.Expires.UTC().Format(time.RFC3339), e.Handle)
		}
		w.Flush()
	case "forget":
		sender := "" // every sender
		if len(pos) == 3 {
			sender = pos[2]
		}
		n, err := store.Forget(ctx, sender)
		if err != nil {
			fmt.Fprintf(st.err, "sievectl vacation: %v\n", err)
			return exitNoInput
		}
		fmt.Fprintf(st.out, "%s: forgot %d entr%s\n", user, n, map[bool]string{true: "y", false: "ies"}[n == 1])
	}
	return exitOK
}

// vacationDir is <root>/<domain>/<user>/vacation for user@domain, without
// creating anything.
func vacationDir(cfg config.Config, address string) (string, error) {
	i := strings.LastIndexByte(address, '@')
	if i <= 0 || i == len(address)-1 {
		return "", fmt.Errorf("USER %q is not user@domain", address)
	}
	// sieve-lda keys users by the lower-cased local part.
	local := strings.ToLower(address[:i])
	s, err := storage.New(storage.Config{Root: cfg.Storage.Root})
	if err != nil {
		return "", err
	}
	u, err := s.User(address[i+1:], local)
	if err != nil {
		return "", err
	}
	return u.VacationDir(), nil
}

// describeVacation renders a vacation action for sievectl test, and says
// whether sieve-lda would send the reply for this message and envelope:
// the same rules (vacation.Policy) except the memory of senders already
// answered, which a dry run does not read.
func describeVacation(a engine.ExtensionAction, dc describeContext) (string, string) {
	v, ok := a.Value.(*vacation.Action)
	if !ok {
		return engine.String(a), ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vacation reply (every %s per sender, handle %q", humanPeriod(v.Period), v.Handle)
	if v.Subject != "" {
		fmt.Fprintf(&b, ", subject %q", v.Subject)
	}
	if v.From != "" {
		fmt.Fprintf(&b, ", from %q", v.From)
	}
	if len(v.Addresses) > 0 {
		fmt.Fprintf(&b, ", addresses %q", v.Addresses)
	}
	if v.Mime {
		b.WriteString(", mime")
	}
	fmt.Fprintf(&b, "): %q", v.Reason)
	if dc.msg == nil {
		return b.String(), ""
	}
	opts := wiring.VacationOptions(dc.cfg)
	env := dc.envelope
	dec, err := opts.PolicyFor("", env.To).Check(vacation.Request{Sender: env.From, Recipient: env.To,
		OriginalRecipient: env.OriginalTo, Header: dc.msg.Header(), Action: v}, nil)
	switch {
	case err != nil:
		return b.String(), fmt.Sprintf("cannot tell whether a reply would be sent: %v", err)
	case dec.Skip != nil:
		return b.String(), fmt.Sprintf("no reply would be sent: %s (rule %s)", dec.Skip.Reason, dec.Skip.Rule)
	}
	mailFrom := "<>"
	if opts.SendFromRecipient {
		mailFrom = "<" + dec.EnvelopeFrom + ">"
	}
	from := v.From
	if from == "" {
		from = dec.ReplyFrom
	}
	return b.String(), fmt.Sprintf("a reply would be sent to <%s> from %s (MAIL FROM %s), unless <%s> was already answered in the last %s",
		env.From, from, mailFrom, env.From, humanPeriod(v.Period))
}

// humanPeriod renders a vacation period as a script author wrote it.
func humanPeriod(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > 0 && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	case d == time.Second:
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", d/time.Second)
}
