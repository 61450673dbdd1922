package config

// Storage configures the per-user script store shared by sieved and
// sieve-lda: <root>/<domain>/<user>/.
type Storage struct {
	Root string `toml:"root"` // default /var/lib/sieve
}

func defaultStorage() Storage { return Storage{Root: "/var/lib/sieve"} }

func (s Storage) validate() error { return nil }
