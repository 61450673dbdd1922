package wiring

import (
	"slices"
	"testing"

	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
)

func TestEngineConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Engine.MaxActions = 7
	cfg.LDA.SubaddressSeparators = "+"
	ec := EngineConfig(cfg)
	if ec.Limits.MaxActions != 7 {
		t.Errorf("MaxActions = %d, want the [engine] value 7", ec.Limits.MaxActions)
	}
	if ec.SubaddressSeparators != "+" {
		t.Errorf("SubaddressSeparators = %q, want [lda]'s", ec.SubaddressSeparators)
	}
	exts := engine.New(ec).Extensions()
	for _, want := range []string{"vacation", "vacation-seconds", "fileinto", "imap4flags"} {
		if !slices.Contains(exts, want) {
			t.Errorf("extensions %v lack %q", exts, want)
		}
	}
}
