package api

// What the bulk endpoints (POST /v1/messages/send/bulk and
// POST /v1/topics/publish/bulk) share: the body's Content-Type, reading it
// line by line, and answering an error before the body has ended.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/warren-p2p/warren/client"
)

// bulkResponse answers a bulk request.
type bulkResponse struct {
	w  http.ResponseWriter
	r  *http.Request
	rc *http.ResponseController
}

// newBulkResponse enables full duplex, so that an error can be answered
// before the request body ends.
func newBulkResponse(w http.ResponseWriter, r *http.Request) *bulkResponse {
	b := &bulkResponse{w: w, r: r, rc: http.NewResponseController(w)}
	_ = b.rc.EnableFullDuplex()
	return b
}

// fail answers code with the JSON error record body, then reads (and
// discards) what the client is still sending for a moment, so it reads this
// answer instead of a reset connection.
func (b *bulkResponse) fail(code int, body any) {
	b.w.Header().Set("Content-Type", "application/json")
	b.w.WriteHeader(code)
	_ = json.NewEncoder(b.w).Encode(body)
	_ = b.rc.Flush()
	if db, ok := b.r.Body.(*deadlineBody); ok {
		db.setDeadline(time.Now().Add(time.Second))
	} else {
		_ = b.rc.SetReadDeadline(time.Now().Add(time.Second))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(b.r.Body, 16<<20))
}

// lineTooLongError is the error of a bulk body line over its limit.
type lineTooLongError struct {
	line, max int
	setting   string
}

func (e *lineTooLongError) Error() string {
	return fmt.Sprintf("line %d is longer than %d bytes (%s)", e.line, e.max, e.setting)
}

// bulkReadError is the error of a failed read of a bulk body:
// body_too_large for a line over the limit, body_timeout for a body that
// stalled for api.read_timeout, unavailable when the server is closing,
// else invalid_argument.
func (s *Server) bulkReadError(ctx context.Context, err error) error {
	var ne net.Error
	var long *lineTooLongError
	switch {
	case errors.As(err, &long):
		s.refused(reasonBodyTooLarge)
		return withCode(client.CodeBodyTooLarge, err)
	case errors.As(err, &ne) && ne.Timeout(): // a stalled read also cancels ctx
		s.refused(reasonBodyTimeout)
		return withCode(client.CodeBodyTimeout, fmt.Errorf("no data for api.read_timeout (%s)", s.lim.readTimeout))
	case ctx.Err() != nil:
		return withCode(client.CodeUnavailable, err)
	}
	return invalid(err)
}

// bulkContentType checks the Content-Type of a bulk body: ndjson for
// client.ContentTypeNDJSON, else client.ContentTypeLines (what names the
// call, lines what a line of text is).
func bulkContentType(r *http.Request, what, lines string) (ndjson bool, err error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != client.ContentTypeLines && ct != client.ContentTypeNDJSON) {
		return false, withCode(client.CodeUnsupportedMediaType, fmt.Errorf("%s: Content-Type %q: expected %s (%s) or %s (one JSON object per line)",
			what, r.Header.Get("Content-Type"), client.ContentTypeLines, lines, client.ContentTypeNDJSON))
	}
	return ct == client.ContentTypeNDJSON, nil
}

// lineReader reads the lines of a bulk request body, each of at most max
// bytes, without allocating per line.
type lineReader struct {
	br      *bufio.Reader
	max     int
	setting string // the config setting behind max, named in errors
	buf     []byte
	line    int // lines returned so far
}

// newLineReader reads r's lines of at most max bytes; setting names the
// config setting that sets max.
func newLineReader(r io.Reader, max int, setting string) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max, setting: setting}
}

// next returns the next line without its '\n' (valid until the next call),
// io.EOF at the end, or an error naming the line that is too long.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
		if len(lr.buf)+len(frag) > lr.max+1 { // +1: the '\n'
			return nil, &lineTooLongError{line: lr.line + 1, max: lr.max, setting: lr.setting}
		}
		switch {
		case err == nil:
			lr.line++
			if len(lr.buf) == 0 {
				return frag[:len(frag)-1], nil
			}
			lr.buf = append(lr.buf, frag[:len(frag)-1]...)
			return lr.buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			lr.buf = append(lr.buf, frag...)
		case errors.Is(err, io.EOF):
			lr.buf = append(lr.buf, frag...)
			if len(lr.buf) == 0 {
				return nil, io.EOF
			}
			lr.line++
			return lr.buf, nil // a last line without '\n'
		default:
			return nil, err
		}
	}
}
