//go:build ignore

// gencorpus writes the fuzz seed corpora from the readable fixtures:
//
//	cd engine/testdata && go run gencorpus.go
//
// FuzzCompile gets every script, FuzzMessage every message, and
// FuzzCompileExecute every script paired with a message (round robin).
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	scripts := load("scripts/*.sieve")
	scripts = append(scripts, load("bench/*.sieve")...)
	msgs := load("messages/*.eml")
	msgs = append(msgs, load("bench/*.eml")...)
	for _, s := range scripts {
		write("FuzzCompile", s.name, s.data)
	}
	for _, m := range msgs {
		write("FuzzMessage", m.name, m.data)
	}
	for i, s := range scripts {
		m := msgs[i%len(msgs)]
		write("FuzzCompileExecute", s.name+"+"+m.name, s.data, m.data)
	}
}

type file struct {
	name string
	data []byte
}

func load(glob string) []file {
	names, err := filepath.Glob(glob)
	if err != nil {
		log.Fatal(err)
	}
	sort.Strings(names)
	var out []file
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			log.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(n), filepath.Ext(n))
		out = append(out, file{filepath.Base(filepath.Dir(n)) + "-" + base, b})
	}
	return out
}

func write(target, name string, args ...[]byte) {
	dir := filepath.Join("fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(a)))
	}
	if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}
