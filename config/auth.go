package config

// Auth is the [auth] section.
type Auth struct{}

func defaultAuth() Auth { return Auth{} }

func (x Auth) validate() error { return nil }
