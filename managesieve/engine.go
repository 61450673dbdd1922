package managesieve

import "github.com/sieved/sieved/engine"

// EngineCompiler is the Compiler backed by the shared Sieve engine, the one
// sieve-lda runs scripts with.
type EngineCompiler struct {
	Engine *engine.Engine
}

// Extensions implements Compiler.
func (c EngineCompiler) Extensions() []string { return c.Engine.Extensions() }

// Check implements Compiler with Pigeonhole's report format.
func (c EngineCompiler) Check(name string, script []byte) (errs, warnings string) {
	_, diags := c.Engine.Compile(name, script)
	max := c.Engine.Limits().MaxErrors
	if diags.HasErrors() {
		return diags.Errors().Format(name, max), ""
	}
	if w := diags.Warnings(); len(w) > 0 {
		return "", w.Format(name, max)
	}
	return "", ""
}
