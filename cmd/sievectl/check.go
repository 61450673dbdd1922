package main

import (
	"context"
	"fmt"
)

func init() {
	register(&command{
		name:    "check",
		summary: "compile scripts and print errors and warnings as ManageSieve does",
		run:     runCheck,
	})
}

const checkHelp = `Compiles each SCRIPT with the same engine, extensions and limits as sieved
and sieve-lda, and prints its errors and warnings in the format ManageSieve
clients (and Pigeonhole) show:

  <name>: line <N>: error: <message>.
  <name>: error: validation failed.

A script that compiles prints "<name>: OK" (unless -q), followed by its
warnings if any. SCRIPT "-" reads standard input. The exit code is 1 when
any script has errors.`

func runCheck(ctx context.Context, st *stdio, args []string) int {
	fs := newFlagSet(st, "check", "[--config FILE] [-q] SCRIPT...", checkHelp)
	cfgPath := fs.String("config", "", "read the engine settings from this sieved `FILE` (TOML); default: built-in defaults")
	quiet := fs.Bool("q", false, "print nothing for scripts without errors or warnings")
	pos, code, ok := parseInterspersed(st, fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(st.err, "sievectl check: missing SCRIPT argument")
		fs.Usage()
		return exitUsage
	}
	_, eng, code, ok := loadEngine(st, *cfgPath)
	if !ok {
		return code
	}
	rc := exitOK
	for _, path := range pos {
		src, err := readInput(st, path)
		if err != nil {
			fmt.Fprintf(st.err, "sievectl check: %v\n", err)
			rc = max(rc, exitNoInput)
			continue
		}
		name := scriptName(path)
		_, diags := eng.Compile(name, src)
		if len(diags) > 0 {
			fmt.Fprintln(st.out, diags.Format(name, eng.Limits().MaxErrors))
		}
		if diags.HasErrors() {
			rc = max(rc, exitCompile)
			continue
		}
		if !*quiet || len(diags) > 0 {
			fmt.Fprintf(st.out, "%s: OK\n", name)
		}
	}
	return rc
}
