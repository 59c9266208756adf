package api

// What the bulk endpoints (POST /v1/messages/send/bulk and
// POST /v1/topics/publish/bulk) share: reading the body line by line, and
// answering an error before the body has ended.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// postBulk posts body to a bulk endpoint, as lines or (ndjson) NDJSON
// lines, and decodes the answer. The daemon handles each line as it reads
// it.
func postBulk[T any](ctx context.Context, c *Client, endpoint string, q url.Values, ndjson bool, body io.Reader) (T, error) {
	var v T
	ct := ContentTypeLines
	if ndjson {
		ct = ContentTypeNDJSON
	}
	resp, err := c.sendBody(ctx, http.MethodPost, endpoint+"?"+q.Encode(), ct, io.NopCloser(body))
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return v, fmt.Errorf("API POST %s: decode answer: %w", endpoint, err)
	}
	return v, nil
}

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

// bulkReadError is the status and error of a failed read of a bulk body:
// 413 for a line over the limit, 408 for a body that stalled for
// api.read_timeout, 503 when the server is closing, else 400.
func (s *Server) bulkReadError(ctx context.Context, err error) (int, error) {
	var ne net.Error
	var long *lineTooLongError
	switch {
	case errors.As(err, &long):
		s.refused(reasonBodyTooLarge)
		return http.StatusRequestEntityTooLarge, err
	case errors.As(err, &ne) && ne.Timeout(): // a stalled read also cancels ctx
		s.refused(reasonBodyTimeout)
		return http.StatusRequestTimeout, fmt.Errorf("no data for api.read_timeout (%s)", s.lim.readTimeout)
	case ctx.Err() != nil:
		return http.StatusServiceUnavailable, err
	}
	return http.StatusBadRequest, err
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
