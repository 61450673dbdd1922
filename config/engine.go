package config

import (
	"fmt"
	"time"

	"github.com/sieved/sieved/engine"
)

// Engine is the [engine] section: the limits of the Sieve engine that
// sieved compiles with and sieve-lda runs with. The fields mirror
// engine.Limits one to one (cmd/* convert); the defaults are Pigeonhole's.
type Engine struct {
	MaxScriptBytes    int           `toml:"max_script_bytes"`
	MaxTokens         int           `toml:"max_tokens"`
	MaxNesting        int           `toml:"max_nesting"`
	MaxVariables      int           `toml:"max_variables"`
	MaxVariableLen    int           `toml:"max_variable_len"`
	MaxMatchWildcards int           `toml:"max_match_wildcards"`
	MaxMatchKeyBytes  int           `toml:"max_match_key_bytes"`
	MaxActions        int           `toml:"max_actions"`
	MaxRedirects      int           `toml:"max_redirects"`
	Timeout           time.Duration `toml:"timeout"`
	MaxMIMEDepth      int           `toml:"max_mime_depth"`
	MaxMIMEParts      int           `toml:"max_mime_parts"`
	MaxBodyBytes      int64         `toml:"max_body_bytes"`
	MaxErrors         int           `toml:"max_errors"`
}

// defaultEngine takes the engine's own defaults, so the documented
// config defaults and the engine cannot disagree.
func defaultEngine() Engine {
	l := engine.DefaultLimits()
	return Engine{
		MaxScriptBytes:    l.MaxScriptBytes,
		MaxTokens:         l.MaxTokens,
		MaxNesting:        l.MaxNesting,
		MaxVariables:      l.MaxVariables,
		MaxVariableLen:    l.MaxVariableLen,
		MaxMatchWildcards: l.MaxMatchWildcards,
		MaxMatchKeyBytes:  l.MaxMatchKeyBytes,
		MaxActions:        l.MaxActions,
		MaxRedirects:      l.MaxRedirects,
		Timeout:           l.Timeout,
		MaxMIMEDepth:      l.MaxMIMEDepth,
		MaxMIMEParts:      l.MaxMIMEParts,
		MaxBodyBytes:      l.MaxBodyBytes,
		MaxErrors:         l.MaxErrors,
	}
}

func (x Engine) validate() error {
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"max_script_bytes", int64(x.MaxScriptBytes)}, {"max_tokens", int64(x.MaxTokens)},
		{"max_nesting", int64(x.MaxNesting)}, {"max_variables", int64(x.MaxVariables)},
		{"max_variable_len", int64(x.MaxVariableLen)}, {"max_match_wildcards", int64(x.MaxMatchWildcards)},
		{"max_match_key_bytes", int64(x.MaxMatchKeyBytes)}, {"max_actions", int64(x.MaxActions)},
		{"max_redirects", int64(x.MaxRedirects)}, {"timeout", int64(x.Timeout)},
		{"max_mime_depth", int64(x.MaxMIMEDepth)}, {"max_mime_parts", int64(x.MaxMIMEParts)},
		{"max_body_bytes", x.MaxBodyBytes}, {"max_errors", int64(x.MaxErrors)},
	} {
		if f.v <= 0 {
			return fmt.Errorf("engine.%s must be positive", f.key)
		}
	}
	return nil
}

// Limits converts the section to the engine's limits. sieved, sieve-lda and
// sievectl all go through here, so a script is judged by the same limits
// when it is uploaded, checked and delivered.
func (x Engine) Limits() engine.Limits {
	return engine.Limits{
		MaxScriptBytes:    x.MaxScriptBytes,
		MaxTokens:         x.MaxTokens,
		MaxNesting:        x.MaxNesting,
		MaxVariables:      x.MaxVariables,
		MaxVariableLen:    x.MaxVariableLen,
		MaxMatchWildcards: x.MaxMatchWildcards,
		MaxMatchKeyBytes:  x.MaxMatchKeyBytes,
		MaxActions:        x.MaxActions,
		MaxRedirects:      x.MaxRedirects,
		Timeout:           x.Timeout,
		MaxMIMEDepth:      x.MaxMIMEDepth,
		MaxMIMEParts:      x.MaxMIMEParts,
		MaxBodyBytes:      x.MaxBodyBytes,
		MaxErrors:         x.MaxErrors,
	}
}
