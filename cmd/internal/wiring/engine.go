// Package wiring builds, from the configuration file, the pieces that
// sieved, sieve-lda and sievectl must build identically. Above all the
// Sieve engine: the SIEVE capability sieved advertises, the checks
// PUTSCRIPT runs and what sieve-lda executes at delivery are one and the
// same engine.Config, so no binary can drift from the others.
package wiring

import (
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/vacation"
)

// EngineConfig maps [engine], [lda] subaddress_separators and [vacation]
// onto the engine, with every project extension registered.
func EngineConfig(cfg config.Config) engine.Config {
	return engine.Config{
		Limits:               cfg.Engine.Limits(),
		SubaddressSeparators: cfg.LDA.SubaddressSeparators,
		Extensions: []engine.Extension{
			vacation.NewExtension(VacationOptions(cfg).Periods),
		},
	}
}

// VacationOptions are the vacation settings delivery and the dry run use.
func VacationOptions(cfg config.Config) vacation.Options {
	return vacation.OptionsFromConfig(cfg.Vacation, cfg.LDA.SubaddressSeparators)
}
