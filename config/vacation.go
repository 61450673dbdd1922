package config

// Vacation is the [vacation] section.
type Vacation struct{}

func defaultVacation() Vacation { return Vacation{} }

func (x Vacation) validate() error { return nil }
