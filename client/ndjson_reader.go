package client

// Reading the NDJSON streams of the API (one JSON record per line): the
// subscription streams of messages and topics, and the handle stream.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// MaxMessageSize is the largest message any daemon configuration accepts
// (messages.max_message_size at its upper bound; topic messages are
// smaller). A test in package api checks that it agrees with config.
const MaxMessageSize = 64 << 20

// MaxStreamRecord bounds one record of an NDJSON stream the client reads.
// The client cannot know the daemon's max_message_size, so it allows the
// largest any configuration accepts, base64-encoded, plus generous room for
// the record's other fields: every message a daemon can accept can be
// streamed.
const MaxStreamRecord = (MaxMessageSize+2)/3*4 + 1<<20

// ndjsonReader reads the records of an NDJSON response.
type ndjsonReader struct {
	path string
	resp *http.Response
	br   *bufio.Reader
	buf  []byte
}

func (c *Client) openStream(ctx context.Context, path string, q url.Values) (*ndjsonReader, error) {
	path += "?" + q.Encode()
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return &ndjsonReader{path: path, resp: resp, br: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// line returns the next record's line (valid until the next call); io.EOF
// when the daemon ended the stream.
func (s *ndjsonReader) line() ([]byte, error) {
	s.buf = s.buf[:0]
	for {
		frag, err := s.br.ReadSlice('\n')
		s.buf = append(s.buf, frag...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if len(s.buf) > MaxStreamRecord {
				return nil, fmt.Errorf("API stream %s: a record is over %d bytes", s.path, MaxStreamRecord)
			}
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(s.buf)) == 0:
			return nil, io.EOF
		case err != nil && !errors.Is(err, io.EOF):
			return nil, fmt.Errorf("API stream %s: %w", s.path, err)
		default:
			return s.buf, nil
		}
	}
}

// next decodes the next record into v; io.EOF when the daemon ended the stream.
func (s *ndjsonReader) next(v any) error {
	line, err := s.line()
	if err != nil {
		return err
	}
	return s.decode(line, v)
}

func (s *ndjsonReader) decode(line []byte, v any) error {
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("API stream %s: bad record %.100q: %w", s.path, line, err)
	}
	return nil
}

// openStreamFirst opens an NDJSON stream and decodes its first record into
// first; ok reports whether that record is the expected {"<field>"} one.
func (c *Client) openStreamFirst(ctx context.Context, path string, q url.Values, first any, ok func() bool, field string) (*ndjsonReader, error) {
	s, err := c.openStream(ctx, path, q)
	if err != nil {
		return nil, err
	}
	if err := s.next(first); err != nil || !ok() {
		s.resp.Body.Close()
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("API stream %s: expected a first {%q} record", s.path, field)
		}
		return nil, err
	}
	return s, nil
}

// subStream is the part MessageStream and TopicStream share: the open
// NDJSON stream of a subscription and what it has delivered so far.
type subStream struct {
	s        *ndjsonReader
	count    int    // Info.Count: the daemon ends the stream after this many messages; 0: never
	received uint64 // messages Next has returned
	dropped  uint64 // the subscription's drops as last reported
}

// finish turns the error of reading the next record into Next's error:
// io.EOF once the daemon ended the stream after count messages, an error
// naming the subscription (what, e.g. `topic "news"`) when it ended it
// early, and ctx's error when the subscriber's ctx ended.
func (ss *subStream) finish(err error, what string) error {
	if errors.Is(err, io.EOF) {
		if ss.count > 0 && ss.received >= uint64(ss.count) {
			return io.EOF
		}
		return fmt.Errorf("the daemon ended the subscription to %s after %d messages (is it shutting down?)", what, ss.received)
	}
	if ctxErr := ss.s.resp.Request.Context().Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the daemon cut the subscription to %s after %d messages (is it shutting down?): %w", what, ss.received, err)
	}
	return err
}

// record counts a record Next returns: a message, or (dropped non-nil) a
// drop report.
func (ss *subStream) record(message bool, dropped *uint64) {
	switch {
	case message:
		ss.received++
	case dropped != nil:
		ss.dropped = *dropped
	}
}

// Buffered reports whether another record has already arrived, so a caller
// can flush its output only when it would otherwise wait.
func (ss *subStream) Buffered() bool { return ss.s.br.Buffered() > 0 }

// Received returns how many messages Next has returned.
func (ss *subStream) Received() uint64 { return ss.received }

// Dropped returns the subscription's drops as last reported by the daemon.
func (ss *subStream) Dropped() uint64 { return ss.dropped }

// Close ends the stream and with it the subscription in the daemon.
func (ss *subStream) Close() error { return ss.s.resp.Body.Close() }
