package interp

import (
	"fmt"
	"strings"

	"github.com/foxcpp/go-sieve/lexer"
	"github.com/foxcpp/go-sieve/parser"
)

type SpecTag struct {
	NeedsValue bool
	MatchStr   func(val []string)
	MatchNum   func(val int)
	MatchBool  func()

	// Checks for used string list.
	MinStrCount int
	MaxStrCount int

	// Toggle checks for valid variable names.
	NoVariables bool
}

type SpecPosArg struct {
	Optional bool
	MatchStr func(val []string)
	MatchNum func(i int)

	// Checks for used string list.
	MinStrCount int
	MaxStrCount int

	// Toggle checks for valid variable names.
	NoVariables bool
}

type Spec struct {
	Tags          map[string]SpecTag
	Pos           []SpecPosArg
	AddBlock      func([]Cmd)
	BlockOptional bool
	AddTest       func(Test)
	TestOptional  bool
	MultipleTests bool
}

func LoadSpec(s *Script, spec *Spec, position lexer.Position, args []parser.Arg, tests []parser.Test, block []parser.Cmd) error {
	var lastTag *SpecTag
	nextPosArg := 0
	for _, a := range args {
		switch a := a.(type) {
		case parser.StringArg:
			if lastTag != nil && lastTag.NeedsValue {
				if lastTag.MatchNum != nil {
					return lexer.ErrorAt(a, "the tagged argument requires a number, but a string was found")
				} else if lastTag.MatchStr != nil {
					value := a.Value
					if s.RequiresExtension("encoded-character") {
						var err error
						value, err = decodeEncodedChars(value)
						if err != nil {
							return lexer.ErrorAt(position, "malformed encoded character sequence: %v", err)
						}
					}
					if err := checkVarRefs(s, a.Position, value); err != nil {
						return err
					}

					lastTag.MatchStr([]string{value})
				} else {
					panic("missing matcher for SpecTag")
				}
				lastTag = nil
				continue
			}
			if nextPosArg >= len(spec.Pos) {
				return tooManyArgs(a, spec)
			}
			pos := spec.Pos[nextPosArg]
			if pos.MinStrCount > 1 {
				return lexer.ErrorAt(a, "a string list is required, but a single string was found")
			}
			if pos.MatchNum != nil {
				return lexer.ErrorAt(a, "the argument must be a number, but a string was found")
			} else if pos.MatchStr != nil {
				value := a.Value
				if s.RequiresExtension("encoded-character") {
					var err error
					value, err = decodeEncodedChars(value)
					if err != nil {
						return lexer.ErrorAt(position, "malformed encoded character sequence: %v", err)
					}
				}

				if err := checkVarRefs(s, a.Position, value); err != nil {
					return err
				}
				pos.MatchStr([]string{value})
			} else {
				panic("no pos matcher")
			}
			nextPosArg++
		case parser.StringListArg:
			if lastTag != nil && lastTag.NeedsValue {
				if lastTag.MatchNum != nil {
					return lexer.ErrorAt(a, "the tagged argument requires a number, but a string was found")
				} else if lastTag.MatchStr != nil {
					if (lastTag.MinStrCount != 0 && len(a.Value) < lastTag.MinStrCount) || (lastTag.MaxStrCount != 0 && len(a.Value) > lastTag.MaxStrCount) {
						return lexer.ErrorAt(a, "wrong number of strings in the string list")
					}

					value := a.Value
					if s.RequiresExtension("encoded-character") {
						for i := range value {
							var err error
							value[i], err = decodeEncodedChars(value[i])
							if err != nil {
								return lexer.ErrorAt(position, "malformed encoded character sequence: %v", err)
							}
						}
					}

					for _, v := range value {
						if err := checkVarRefs(s, a.Position, v); err != nil {
							return err
						}
					}
					lastTag.MatchStr(value)
				} else {
					panic("missing matcher for SpecTag")
				}
				lastTag = nil
				continue
			}

			if nextPosArg >= len(spec.Pos) {
				return tooManyArgs(a, spec)
			}
			pos := spec.Pos[nextPosArg]
			if (pos.MinStrCount != 0 && len(a.Value) < pos.MinStrCount) || (pos.MaxStrCount != 0 && len(a.Value) > pos.MaxStrCount) {
				return lexer.ErrorAt(a, "wrong number of strings in the string list")
			}
			if pos.MatchNum != nil {
				return lexer.ErrorAt(a, "the argument must be a number, but a string was found")
			} else if pos.MatchStr != nil {
				value := a.Value
				if s.RequiresExtension("encoded-character") {
					for i := range value {
						var err error
						value[i], err = decodeEncodedChars(value[i])
						if err != nil {
							return lexer.ErrorAt(position, "malformed encoded character sequence: %v", err)
						}
					}
				}

				for _, v := range value {
					if err := checkVarRefs(s, a.Position, v); err != nil {
						return err
					}
				}
				pos.MatchStr(value)
			} else {
				panic("no pos matcher")
			}
			nextPosArg++
		case parser.NumberArg:
			if lastTag != nil && lastTag.NeedsValue {
				if lastTag.MatchStr != nil {
					return lexer.ErrorAt(a, "the tagged argument requires a string, but a number was found")
				} else if lastTag.MatchNum != nil {
					lastTag.MatchNum(a.Value)
				} else {
					panic("missing matcher for SpecTag")
				}
				lastTag = nil
				continue
			}

			if nextPosArg >= len(spec.Pos) {
				return tooManyArgs(a, spec)
			}
			pos := spec.Pos[nextPosArg]
			if pos.MatchStr != nil {
				return lexer.ErrorAt(a, "the argument must be a string, but a number was found")
			} else if pos.MatchNum != nil {
				pos.MatchNum(a.Value)
			} else {
				panic("no pos matcher")
			}
			nextPosArg++
		case parser.TagArg:
			if lastTag != nil && lastTag.NeedsValue {
				return lexer.ErrorAt(a, "the previous tagged argument requires a value")
			}
			tag, ok := spec.Tags[strings.ToLower(a.Value)]
			if !ok {
				tagName := a.Value
				return specErrorAt(a.Position, func(what string) string {
					return fmt.Sprintf("unknown tagged argument ':%s' for %s", tagName, what)
				})
			}
			if tag.NeedsValue {
				lastTag = &tag
			} else {
				tag.MatchBool()
			}
		}
	}
	if lastTag != nil && lastTag.NeedsValue {
		return lexer.ErrorAt(position, "a tagged argument is missing its value")
	}
	for i := nextPosArg; i < len(spec.Pos); i++ {
		if !spec.Pos[i].Optional {
			required := requiredPos(spec)
			given := nextPosArg
			return specErrorAt(position, func(what string) string {
				return fmt.Sprintf("%s requires %d positional argument(s), but %d is/are specified", what, required, given)
			})
		}
	}

	if spec.AddTest == nil {
		if len(tests) != 0 {
			return specErrorAt(position, func(what string) string {
				return fmt.Sprintf("%s does not accept a test (missing ';' or '{'?)", what)
			})
		}
	} else {
		if len(tests) == 0 && !spec.TestOptional {
			return specErrorAt(position, func(what string) string {
				return fmt.Sprintf("%s requires a test, but none is specified", what)
			})
		}
		if len(tests) > 1 && !spec.MultipleTests {
			return specErrorAt(position, func(what string) string {
				return fmt.Sprintf("%s accepts only one test", what)
			})
		}
		for _, t := range tests {
			loadedTest, err := LoadTest(s, t)
			if err != nil {
				return fmt.Errorf("LoadTest %s: %w", t.Id, err)
			}
			spec.AddTest(loadedTest)
		}
	}
	if spec.AddBlock != nil {
		if block != nil {
			s.blockDepth++
			loadedCmds, err := LoadBlock(s, block)
			s.blockDepth--
			if err != nil {
				return err
			}
			spec.AddBlock(loadedCmds)
		} else if !spec.BlockOptional {
			return specErrorAt(position, func(what string) string {
				return fmt.Sprintf("%s requires a command block, but it is missing", what)
			})
		}
	} else if block != nil {
		return specErrorAt(position, func(what string) string {
			return fmt.Sprintf("%s does not accept a command block", what)
		})
	}
	return nil
}

func requiredPos(spec *Spec) int {
	n := 0
	for _, p := range spec.Pos {
		if !p.Optional {
			n++
		}
	}
	return n
}

func tooManyArgs(a parser.Arg, spec *Spec) error {
	line, col := a.LineCol()
	max := len(spec.Pos)
	return specErrorAt(lexer.LineCol(line, col), func(what string) string {
		return fmt.Sprintf("%s accepts at most %d positional argument(s)", what, max)
	})
}
