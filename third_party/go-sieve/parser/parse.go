package parser

import (
	"github.com/foxcpp/go-sieve/lexer"
)

type Options struct {
	MaxBlockNesting int
	MaxTestNesting  int
}

func Parse(stream *lexer.Stream, opts *Options) ([]Cmd, error) {
	return parse(stream, 0, opts)
}

// parse is a low-level parsing function, it creates
// AST with very little interpretation of values.
func parse(stream *lexer.Stream, nesting int, opts *Options) ([]Cmd, error) {
	if opts.MaxBlockNesting != 0 && nesting > opts.MaxBlockNesting {
		return nil, stream.Err("blocks are nested too deeply (the limit is %d)", opts.MaxBlockNesting)
	}
	res := []Cmd{}
	for {
		curCmd := Cmd{}

		idT := stream.Pop()
		if idT == nil {
			return res, nil
		}
		switch id := idT.(type) {
		case lexer.Identifier:
			curCmd.Id = id.Text
			curCmd.Position = id.Position
		case lexer.BlockEnd:
			if nesting == 0 {
				// A stray '}' used to end the script silently, dropping
				// everything after it.
				return nil, stream.Err("unexpected '}' found outside of any block")
			}
			return res, nil
		default:
			return nil, stream.Err("expected a command, but found %s", describe(idT))
		}

		args, tests, err := readArguments(stream, false, 0, opts)
		if err != nil {
			return nil, err
		}
		curCmd.Args = args
		curCmd.Tests = tests

		cmdEnd := stream.Pop()
		if cmdEnd == nil {
			return nil, stream.ErrAtEnd("expected ';' or '{' after the %s command, but found end of file", curCmd.Id)
		}
		switch cmdEnd.(type) {
		case lexer.Semicolon:
			// Ok.
		case lexer.BlockStart:
			cmds, err := parse(stream, nesting+1, opts)
			if err != nil {
				return nil, err
			}

			// EOF vs } check
			last := stream.Last()
			if last == nil {
				return nil, stream.ErrAtEnd("expected '}' to end the block of the %s command, but found end of file", curCmd.Id)
			}

			curCmd.Block = cmds
		default:
			return nil, stream.Err("expected ';' or '{' after the %s command, but found %s", curCmd.Id, describe(cmdEnd))
		}

		res = append(res, curCmd)
	}
}

func readArguments(s *lexer.Stream, forTest bool, nesting int, opts *Options) ([]Arg, []Test, error) {
	if opts.MaxTestNesting != 0 && nesting > opts.MaxTestNesting {
		return nil, nil, s.Err("tests are nested too deeply (the limit is %d)", opts.MaxTestNesting)
	}
	var args []Arg
	var tests []Test

	for {
		tok := s.Peek()
		if tok == nil {
			if forTest {
				return nil, nil, s.ErrAtEnd("expected more arguments or the end of the test, but found end of file")
			}
			return nil, nil, s.ErrAtEnd("expected ';' or '{' at the end of the command, but found end of file")
		}
		switch tok := tok.(type) {
		case lexer.Semicolon, lexer.BlockStart:
			return args, tests, nil
		case lexer.Comma, lexer.TestListEnd:
			if !forTest {
				return nil, nil, s.Err("unexpected %s: expected ';' or '{' at the end of the command", describe(tok))
			}
			return args, tests, nil
		case lexer.String:
			s.Pop()
			args = append(args, StringArg{Value: tok.Text, Position: tok.Position})
		case lexer.ListStart:
			s.Pop()
			list, positions, err := readStringList(s)
			if err != nil {
				return nil, nil, err
			}
			args = append(args, StringListArg{Value: list, Position: tok.Position, Positions: positions})
		case lexer.Number:
			s.Pop()
			args = append(args, NumberArg{Value: tok.Value * tok.Quantifier.Multiplier(), Position: tok.Position})
		case lexer.Colon:
			s.Pop() // colon
			idT := s.Pop()
			if idT == nil {
				return nil, nil, s.ErrAtEnd("expected a tag name after ':', but found end of file")
			}
			id, ok := idT.(lexer.Identifier)
			if !ok {
				return nil, nil, s.Err("expected a tag name after ':', but found %s", describe(idT))
			}
			args = append(args, TagArg{Value: id.Text, Position: tok.Position})
		case lexer.Identifier:
			// a single test, at the end of arguments.
			s.Pop()
			t := Test{
				Position: tok.Position,
				Id:       tok.Text,
			}
			tArgs, tTests, err := readArguments(s, true, nesting+1, opts)
			if err != nil {
				return nil, nil, err
			}

			t.Args = tArgs
			t.Tests = tTests
			tests = append(tests, t)
		case lexer.TestListStart:
			s.Pop()
			var err error
			tests, err = readTestList(s, nesting, opts)
			if err != nil {
				return nil, nil, err
			}
			return args, tests, nil
		default:
			s.Pop()
			return nil, nil, s.Err("unexpected %s in the arguments", describe(tok))
		}
	}
}

func readTestList(s *lexer.Stream, nesting int, opts *Options) ([]Test, error) {
	needTest := true
	res := []Test{}
	for {
		tok := s.Pop()
		if tok == nil {
			return nil, s.ErrAtEnd("expected a test or ')' in the test list, but found end of file")
		}
		switch tok := tok.(type) {
		case lexer.Identifier:
			if !needTest {
				return nil, s.Err("expected ',' or ')' in the test list, but found the %s test", tok.Text)
			}
			t := Test{
				Position: tok.Position,
				Id:       tok.Text,
			}
			args, tests, err := readArguments(s, true, nesting+1, opts)
			if err != nil {
				return nil, err
			}
			t.Args = args
			t.Tests = tests
			res = append(res, t)
			needTest = false
		case lexer.Comma:
			if needTest {
				return nil, s.Err("expected a test in the test list, but found ','")
			}
			needTest = true
		case lexer.TestListEnd:
			if needTest && len(res) > 0 {
				// anyof(true, true,) used to be accepted.
				return nil, s.Err("expected a test after ',' in the test list, but found ')'")
			}
			return res, nil
		default:
			return nil, s.Err("expected a test, ',' or ')' in the test list, but found %s", describe(tok))
		}
	}
}

func readStringList(s *lexer.Stream) ([]string, []lexer.Position, error) {
	res := []string{}
	var positions []lexer.Position
	needString := true
	for {
		tok := s.Pop()
		if tok == nil {
			return nil, nil, s.ErrAtEnd("expected a string or ']' in the string list, but found end of file")
		}
		switch tok := tok.(type) {
		case lexer.String:
			if !needString {
				return nil, nil, s.Err("expected ',' or ']' in the string list, but found a string")
			}
			res = append(res, tok.Text)
			if tok.Position.Line != 0 { // not lexed with NoPosition
				positions = append(positions, tok.Position)
			}
			needString = false
		case lexer.Comma:
			if needString {
				return nil, nil, s.Err("expected a string in the string list, but found ','")
			}
			needString = true
		case lexer.ListEnd:
			if needString && len(res) > 0 {
				return nil, nil, s.Err("expected a string after ',' in the string list, but found ']'")
			}
			return res, positions, nil
		default:
			return nil, nil, s.Err("expected a string, ',' or ']' in the string list, but found %s", describe(tok))
		}
	}
}

func ErrorAt(pos lexer.Position, fmt string, args ...interface{}) error {
	return lexer.ErrorAt(pos, fmt, args...)
}

// describe names a token for error messages.
func describe(t lexer.Token) string {
	switch t := t.(type) {
	case nil:
		return "end of file"
	case lexer.Identifier:
		return "identifier '" + t.Text + "'"
	case lexer.String:
		return "a string"
	case lexer.Number:
		return "a number"
	case lexer.ListStart:
		return "'['"
	case lexer.ListEnd:
		return "']'"
	case lexer.BlockStart:
		return "'{'"
	case lexer.BlockEnd:
		return "'}'"
	case lexer.TestListStart:
		return "'('"
	case lexer.TestListEnd:
		return "')'"
	case lexer.Comma:
		return "','"
	case lexer.Semicolon:
		return "';'"
	case lexer.Colon:
		return "':'"
	}
	return t.String()
}
