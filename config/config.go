// Package config reads sieved's TOML configuration file, shared by sieved,
// sieve-lda and sievectl so that an administrator sets paths and limits once.
//
// Every key is documented in example.toml next to this file; Default returns
// the same values as that file with nothing uncommented.
package config

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// Example is the documented example configuration (every key, commented).
//
//go:embed example.toml
var Example string

// Config is the whole configuration file. Each section type lives in its
// own file and has a default constructor.
type Config struct {
	Storage  Storage  `toml:"storage"`
	Engine   Engine   `toml:"engine"`
	Server   Server   `toml:"server"`
	Auth     Auth     `toml:"auth"`
	LDA      LDA      `toml:"lda"`
	Vacation Vacation `toml:"vacation"`
	Sender   Sender   `toml:"sender"`
	Log      Log      `toml:"log"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Storage:  defaultStorage(),
		Engine:   defaultEngine(),
		Server:   defaultServer(),
		Auth:     defaultAuth(),
		LDA:      defaultLDA(),
		Vacation: defaultVacation(),
		Sender:   defaultSender(),
		Log:      Log{Level: "info", Format: "text"},
	}
}

// Parse decodes a TOML document over the defaults. Unknown keys are an
// error, so a typo never silently falls back to a default.
func Parse(text string) (Config, error) {
	c := Default()
	md, err := toml.Decode(text, &c)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config: unknown keys: %s", strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads and parses the file at path.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(string(b))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks values that TOML types cannot.
func (c Config) Validate() error {
	for _, v := range []interface{ validate() error }{c.Storage, c.Engine, c.Server, c.Auth, c.LDA, c.Vacation, c.Sender} {
		if err := v.validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}
