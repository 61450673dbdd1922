package config

// Engine is the [engine] section.
type Engine struct{}

func defaultEngine() Engine { return Engine{} }

func (x Engine) validate() error { return nil }
