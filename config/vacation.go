package config

import (
	"fmt"
	"time"
)

// Vacation is the [vacation] section: limits and rules of vacation
// auto-replies (RFC 5230, RFC 6131, RFC 3834).
type Vacation struct {
	// MinPeriod, DefaultPeriod and MaxPeriod bound :days / :seconds. A
	// script value under the minimum is raised to it with a compile
	// warning; MaxPeriod 0 means no maximum (Pigeonhole 2.3).
	MinPeriod     time.Duration `toml:"min_period"`
	DefaultPeriod time.Duration `toml:"default_period"`
	MaxPeriod     time.Duration `toml:"max_period"`
	// CheckRecipient: reply only when one of the user's addresses is in
	// To/Cc/Bcc/Resent-To/Resent-Cc/Resent-Bcc (RFC 5230 section 4.5).
	CheckRecipient bool `toml:"check_recipient"`
	// UseOriginalRecipient counts the original recipient (sieve-lda -a) as
	// one of the user's addresses.
	UseOriginalRecipient bool `toml:"use_original_recipient"`
	// SendFromRecipient sends replies with MAIL FROM the user's address
	// instead of the null sender <>.
	SendFromRecipient bool `toml:"send_from_recipient"`
	// MaxReceived: no reply to a message with more Received fields (a mail
	// loop); 0 disables the check.
	MaxReceived int `toml:"max_received"`
	// NoReplySenders: local parts of senders that never get a reply
	// ("noreply", "no-reply.alerts", "noreply+x" all match "noreply").
	NoReplySenders []string `toml:"noreply_senders"`
	// DefaultSubject when neither :subject nor the original Subject exists.
	DefaultSubject string `toml:"default_subject"`
	// MaxEntries bounds the remembered senders per user; the ones that
	// expire first are dropped beyond it.
	MaxEntries int `toml:"max_entries"`
	// SendTimeout bounds waiting for the per-user lock and sending a reply.
	SendTimeout time.Duration `toml:"send_timeout"`
	// Aliases maps a user's address to more addresses of the same user.
	Aliases map[string][]string `toml:"aliases"`
}

func defaultVacation() Vacation {
	return Vacation{
		MinPeriod:      24 * time.Hour,
		DefaultPeriod:  7 * 24 * time.Hour,
		MaxPeriod:      60 * 24 * time.Hour,
		CheckRecipient: true,
		MaxReceived:    10,
		NoReplySenders: []string{"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply"},
		DefaultSubject: "Automated reply",
		MaxEntries:     10000,
		SendTimeout:    30 * time.Second,
	}
}

func (x Vacation) validate() error {
	switch {
	case x.MinPeriod < time.Second:
		return fmt.Errorf("vacation: min_period %s is under one second", x.MinPeriod)
	case x.DefaultPeriod < x.MinPeriod:
		return fmt.Errorf("vacation: default_period %s is under min_period %s", x.DefaultPeriod, x.MinPeriod)
	case x.MaxPeriod != 0 && x.MaxPeriod < x.DefaultPeriod:
		return fmt.Errorf("vacation: max_period %s is under default_period %s", x.MaxPeriod, x.DefaultPeriod)
	case x.MaxReceived < 0:
		return fmt.Errorf("vacation: max_received must not be negative")
	case x.MaxEntries < 1:
		return fmt.Errorf("vacation: max_entries must be at least 1")
	case x.SendTimeout <= 0:
		return fmt.Errorf("vacation: send_timeout must be positive")
	}
	return nil
}
