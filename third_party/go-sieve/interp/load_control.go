package interp

import (
	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

func loadRequire(s *Script, pcmd parser.Cmd) (Cmd, error) {
	var exts []string
	err := LoadSpec(s, &Spec{
		Pos: []SpecPosArg{
			{
				Optional: false,
				MatchStr: func(val []string) {
					exts = val
				},
				MinStrCount: 1,
			},
		},
	}, pcmd.Position, pcmd.Args, pcmd.Tests, pcmd.Block)
	if err != nil {
		return nil, err
	}

	unknown := ""
	for _, ext := range exts {
		if ext == DovecotTestExtension {
			if s.opts.T == nil {
				return nil, parser.ErrorAt(pcmd.Position, "testing environment is not available, cannot use vnd.dovecot.testsuite")
			}
			s.extensions[DovecotTestExtension] = struct{}{}
			continue
		}

		if !s.opts.extensionSupported(ext) {
			// Keep going, so the known ones are registered and do not
			// cause follow-up "missing require" errors.
			if unknown == "" {
				unknown = ext
			}
			continue
		}
		s.extensions[ext] = struct{}{}
	}
	if unknown != "" {
		return nil, parser.ErrorAt(stringPosition(pcmd, unknown), "unknown Sieve capability '%s'", unknown)
	}
	return nil, nil
}

func loadIf(s *Script, pcmd parser.Cmd) (Cmd, error) {
	cmd := CmdIf{}
	err := LoadSpec(s, &Spec{
		AddTest: func(t Test) {
			cmd.Test = t
		},
		AddBlock: func(cmds []Cmd) {
			cmd.Block = cmds
		},
	}, pcmd.Position, pcmd.Args, pcmd.Tests, pcmd.Block)
	return cmd, err
}

func loadElsif(s *Script, pcmd parser.Cmd) (Cmd, error) {
	cmd := CmdElsif{}
	err := LoadSpec(s, &Spec{
		AddTest: func(t Test) {
			cmd.Test = t
		},
		AddBlock: func(cmds []Cmd) {
			cmd.Block = cmds
		},
	}, pcmd.Position, pcmd.Args, pcmd.Tests, pcmd.Block)
	return cmd, err
}

func loadElse(s *Script, pcmd parser.Cmd) (Cmd, error) {
	cmd := CmdElse{}
	err := LoadSpec(s, &Spec{
		AddBlock: func(cmds []Cmd) {
			cmd.Block = cmds
		},
	}, pcmd.Position, pcmd.Args, pcmd.Tests, pcmd.Block)
	return cmd, err
}

func loadStop(s *Script, pcmd parser.Cmd) (Cmd, error) {
	cmd := CmdStop{}
	err := LoadSpec(s, &Spec{}, pcmd.Position, pcmd.Args, pcmd.Tests, pcmd.Block)
	return cmd, err
}

// stringPosition finds where the string value was written among the
// arguments of cmd (a multi-line require list reports the offending line),
// falling back to the command's position.
func stringPosition(cmd parser.Cmd, value string) lexer.Position {
	for _, a := range cmd.Args {
		switch a := a.(type) {
		case parser.StringArg:
			if a.Value == value {
				return a.Position
			}
		case parser.StringListArg:
			for i, v := range a.Value {
				if v == value && i < len(a.Positions) {
					return a.Positions[i]
				}
			}
		}
	}
	return cmd.Position
}
