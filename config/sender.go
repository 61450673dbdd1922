package config

import "fmt"

// Sender is the [sender] section: how sieve-lda sends mail it creates
// (redirects, rejection notices) and vacation replies.
type Sender struct {
	// Method is "sendmail" (run a sendmail-compatible command) or "smtp"
	// (submit to a relay).
	Method string `toml:"method"`
	// SendmailPath and SendmailArgs: the command is run as
	// <path> <args...> -f <from> -- <to...>, the message on its stdin.
	SendmailPath string   `toml:"sendmail_path"`
	SendmailArgs []string `toml:"sendmail_args"`
	// SMTP relay: host:port, TLS mode (none, starttls, tls), optional
	// PLAIN authentication with the password read from PasswordFile.
	SMTPAddr         string `toml:"smtp_addr"`
	SMTPTLS          string `toml:"smtp_tls"`
	SMTPHelo         string `toml:"smtp_helo"`
	SMTPUsername     string `toml:"smtp_username"`
	SMTPPasswordFile string `toml:"smtp_password_file"`
	// TimeoutSeconds bounds one send.
	TimeoutSeconds int `toml:"timeout_seconds"`
}

func defaultSender() Sender {
	return Sender{
		Method:         "sendmail",
		SendmailPath:   "/usr/sbin/sendmail",
		SendmailArgs:   []string{"-i"},
		SMTPAddr:       "127.0.0.1:25",
		SMTPTLS:        "none",
		TimeoutSeconds: 60,
	}
}

func (x Sender) validate() error {
	switch x.Method {
	case "sendmail":
		if x.SendmailPath == "" {
			return fmt.Errorf("sender: sendmail_path is empty")
		}
	case "smtp":
		if x.SMTPAddr == "" {
			return fmt.Errorf("sender: smtp_addr is empty")
		}
	default:
		return fmt.Errorf("sender: method %q: want sendmail or smtp", x.Method)
	}
	switch x.SMTPTLS {
	case "none", "starttls", "tls":
	default:
		return fmt.Errorf("sender: smtp_tls %q: want none, starttls or tls", x.SMTPTLS)
	}
	if x.TimeoutSeconds <= 0 {
		return fmt.Errorf("sender: timeout_seconds must be positive")
	}
	return nil
}
