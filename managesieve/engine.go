package managesieve

import (
	"strings"

	"github.com/sieved/sieved/engine"
)

// EngineCompiler is the Compiler backed by the shared Sieve engine, the one
// sieve-lda runs scripts with.
type EngineCompiler struct {
	Engine *engine.Engine
}

// Extensions implements Compiler.
func (c EngineCompiler) Extensions() []string { return c.Engine.Extensions() }

// Check implements Compiler with Pigeonhole's report format. An empty
// name (CHECKSCRIPT) leaves the "<name>: " prefix out, as Pigeonhole does.
func (c EngineCompiler) Check(name string, script []byte) (errs, warnings string) {
	_, diags := c.Engine.Compile(name, script)
	max := c.Engine.Limits().MaxErrors
	if diags.HasErrors() {
		return format(diags.Errors(), name, max), ""
	}
	if w := diags.Warnings(); len(w) > 0 {
		return "", format(w, name, max)
	}
	return "", ""
}

func format(d engine.Diagnostics, name string, max int) string {
	text := d.Format(name, max)
	if name != "" {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ": ")
	}
	return strings.Join(lines, "\n")
}
