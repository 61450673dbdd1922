package config

// Server is the [server] section.
type Server struct{}

func defaultServer() Server { return Server{} }

func (x Server) validate() error { return nil }
