package config

// Sender is the [sender] section.
type Sender struct{}

func defaultSender() Sender { return Sender{} }

func (x Sender) validate() error { return nil }
