package main

import (
	"context"
	"fmt"
)

func init() {
	register(&command{
		name:    "extensions",
		summary: "list the Sieve extensions scripts may require (the SIEVE capability)",
		run:     runExtensions,
	})
}

const extensionsHelp = `Prints, one per line, the extensions a script may name in "require": the
same list sieved advertises in its ManageSieve SIEVE capability.`

func runExtensions(ctx context.Context, st *stdio, args []string) int {
	fs := newFlagSet(st, "extensions", "[--config FILE]", extensionsHelp)
	cfgPath := fs.String("config", "", "read the engine settings from this sieved `FILE` (TOML); default: built-in defaults")
	pos, code, ok := parseInterspersed(st, fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprintln(st.err, "sievectl extensions: takes no arguments")
		return exitUsage
	}
	_, eng, code, ok := loadEngine(st, *cfgPath)
	if !ok {
		return code
	}
	for _, x := range eng.Extensions() {
		fmt.Fprintln(st.out, x)
	}
	return exitOK
}
