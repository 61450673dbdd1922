package config

import (
	"github.com/sieved/sieved/engine"
	"reflect"
	"strings"
	"testing"
)

func TestExampleMatchesDefaults(t *testing.T) {
	// Uncommenting every "# key = value" line of the example must give the defaults.
	var b strings.Builder
	for _, line := range strings.Split(Example, "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "# ") && strings.Contains(trim, " = ") && !strings.HasPrefix(trim, "# [") {
			rest := strings.TrimPrefix(trim, "# ")
			if k, _, ok := strings.Cut(rest, " = "); ok && !strings.Contains(k, " ") {
				line = rest
			}
		}
		b.WriteString(line + "\n")
	}
	c, err := Parse(b.String())
	if err != nil {
		t.Fatalf("uncommented example does not parse: %v", err)
	}
	if d := Default(); !reflect.DeepEqual(c, d) {
		t.Errorf("uncommented example differs from Default():\n got %+v\nwant %+v", c, d)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "[storage]\nrooot = \"/x\"\n", "unknown keys: storage.rooot"},
		{"bad toml", "[storage\n", "config:"},
		{"wrong type", "[storage]\nroot = 3\n", "config:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) error = %v, want containing %q", tc.text, err, tc.want)
			}
		})
	}
}

// The [engine] defaults are the engine's, and the mapping back loses no
// field: a limit added to engine.Limits but not to the section fails here.
func TestEngineDefaultsRoundTrip(t *testing.T) {
	if got, want := Default().Engine.Limits(), engine.DefaultLimits(); got != want {
		t.Errorf("Default().Engine.Limits() = %+v\nwant engine.DefaultLimits() = %+v", got, want)
	}
}
