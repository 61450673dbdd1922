package config

import (
	"fmt"
	"strings"
)

// LDA is the [lda] section: sieve-lda, the delivery agent.
type LDA struct {
	// MailDir is the template of a user's Maildir++ root. Placeholders:
	// {domain}, {user} (local part without detail), {address}
	// (user@domain) and {storage_root} ([storage] root).
	MailDir string `toml:"mail_dir"`
	// Script is the template of the user's active script.
	Script string `toml:"script"`
	// SubaddressSeparators: each character separates user and detail
	// (RFC 5233), like Exim's local_part_suffix = +* : -*.
	SubaddressSeparators string `toml:"subaddress_separators"`
	// DefaultDomain is used when -d has no "@domain".
	DefaultDomain string `toml:"default_domain"`
	// UsersFile, when set, lists the known users, one address per line
	// ("#" comments); their Maildir is created on first delivery. When
	// empty a user is known when their Maildir root directory exists.
	UsersFile string `toml:"users_file"`
	// FolderSeparators are the hierarchy separators accepted in fileinto
	// names ("Lists/Go", "Lists.Go").
	FolderSeparators string `toml:"folder_separators"`
	// Autocreate creates a missing fileinto folder (else: INBOX, logged);
	// Autosubscribe adds it to the Maildir "subscriptions" file.
	Autocreate    bool `toml:"autocreate"`
	Autosubscribe bool `toml:"autosubscribe"`
	// RedirectFrom is the envelope sender of redirected mail: "sender"
	// (the original envelope sender), "recipient" (the user's address)
	// or "null" (<>).
	RedirectFrom string `toml:"redirect_from"`
	// MaxRedirectHops refuses to redirect a message that already carries
	// this many X-Sieve-Redirected-By headers.
	MaxRedirectHops int `toml:"max_redirect_hops"`
	// Postmaster is the From: of rejection notices ("" =
	// MAILER-DAEMON@<recipient domain>).
	Postmaster string `toml:"postmaster"`
	// TimeoutSeconds bounds one whole delivery.
	TimeoutSeconds int `toml:"timeout_seconds"`
	// LogFile: "syslog" (mail facility; when no syslog daemon listens the
	// log is dropped, or goes to stderr if that is a terminal), "stderr",
	// or a file path (appended). MTAs copy a delivery agent's stderr into
	// their logs and bounces, so by default it carries only the one-line
	// reason of a failure.
	LogFile string `toml:"log_file"`
}

func defaultLDA() LDA {
	return LDA{
		MailDir:              "/var/vmail/{domain}/{user}",
		Script:               "{storage_root}/{domain}/{user}/active",
		SubaddressSeparators: "+-",
		FolderSeparators:     "/.",
		Autocreate:           true,
		Autosubscribe:        true,
		RedirectFrom:         "sender",
		MaxRedirectHops:      5,
		TimeoutSeconds:       300,
		LogFile:              "syslog",
	}
}

func (x LDA) validate() error {
	for _, t := range []struct{ key, v string }{{"mail_dir", x.MailDir}, {"script", x.Script}} {
		if t.v == "" {
			return fmt.Errorf("lda: %s is empty", t.key)
		}
		if !strings.Contains(t.v, "{user}") && !strings.Contains(t.v, "{address}") {
			return fmt.Errorf("lda: %s %q names no {user} or {address}", t.key, t.v)
		}
	}
	if x.FolderSeparators == "" {
		return fmt.Errorf("lda: folder_separators is empty")
	}
	switch x.RedirectFrom {
	case "sender", "recipient", "null":
	default:
		return fmt.Errorf("lda: redirect_from %q: want sender, recipient or null", x.RedirectFrom)
	}
	if x.LogFile == "" {
		return fmt.Errorf(`lda: log_file is empty (use "syslog", "stderr" or a path)`)
	}
	if x.MaxRedirectHops <= 0 || x.TimeoutSeconds <= 0 {
		return fmt.Errorf("lda: max_redirect_hops and timeout_seconds must be positive")
	}
	return nil
}
