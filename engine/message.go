package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/emersion/go-message/textproto"
	"github.com/foxcpp/go-sieve/interp"
)

// Message adapts a RFC 5322 message to go-sieve's Message and BodyMessage.
// Header fields are parsed once. (First version: the whole message is kept
// in memory; to be replaced by a bounded, streaming adapter.)
type Message struct {
	header textproto.Header
	raw    []byte
	size   int
}

// ReadMessage reads a message from r.
func ReadMessage(r io.Reader) (*Message, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("engine: read message: %w", err)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("engine: parse header: %w", err)
	}
	return &Message{header: h, raw: raw, size: len(raw)}, nil
}

// Header returns the parsed header.
func (m *Message) Header() textproto.Header { return m.header }

// HeaderGet implements interp.Message.
func (m *Message) HeaderGet(key string) ([]string, error) {
	return m.header.Values(key), nil
}

// MessageSize implements interp.Message.
func (m *Message) MessageSize() int { return m.size }

// BodyRaw implements interp.BodyMessage.
func (m *Message) BodyRaw(ctx context.Context) (io.Reader, error) {
	return interp.ParseBodyRaw(ctx, bytes.NewReader(m.raw))
}

// BodyParts implements interp.BodyMessage.
func (m *Message) BodyParts(ctx context.Context, contentTypes []string) ([]interp.BodyPart, error) {
	return interp.ParseBodyParts(ctx, bytes.NewReader(m.raw), contentTypes, len(m.raw))
}
