package lexer

import (
	"fmt"
)

type Stream struct {
	cursor int
	toks   []Token
	end    *Position
}

func (s *Stream) Last() Token {
	if s.cursor >= len(s.toks) {
		return nil
	}
	return s.toks[s.cursor]
}

func (s *Stream) Pop() Token {
	s.cursor++
	if s.cursor >= len(s.toks) {
		return nil
	}
	return s.toks[s.cursor]
}

func (s *Stream) Peek() Token {
	cur := s.cursor + 1
	if cur >= len(s.toks) {
		return nil
	}
	return s.toks[cur]
}

func (s *Stream) Err(format string, args ...interface{}) error {
	last := s.Last()
	if last == nil {
		if s.end != nil {
			return ErrorAt(*s.end, format, args...)
		}
		return fmt.Errorf(format, args...)
	}
	return ErrorAt(last, format, args...)
}

func NewStream(toks []Token) *Stream {
	return &Stream{cursor: -1, toks: toks}
}

// NewStreamEnd is NewStream for tokens from LexEnd: errors at the end of
// the input are reported at end.
func NewStreamEnd(toks []Token, end Position) *Stream {
	return &Stream{cursor: -1, toks: toks, end: &end}
}

// ErrAtEnd is Err for "found end of file" errors: it reports the end of the
// input when known (NewStreamEnd), else the last token.
func (s *Stream) ErrAtEnd(format string, args ...interface{}) error {
	if s.end != nil {
		return ErrorAt(*s.end, format, args...)
	}
	return s.Err(format, args...)
}
