package api

// The one decoder of JSON request bodies (and of the JSON lines of bulk
// bodies): bounded in bytes, a single JSON object of the documented form
// (unknown fields refused), nothing but whitespace after it.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/warren-p2p/warren/client"
)

// maxControlBody bounds the JSON body of the endpoints that carry no message
// (peers, ping, tunnels): their largest, a tunnel's allow list, is a few
// kilobytes.
const maxControlBody = 1 << 20

// errTrailingData is the error of a JSON value followed by more than
// whitespace.
var errTrailingData = errors.New("unexpected data after the JSON object: only whitespace may follow it")

// errNotObject is the error of a body that is not a JSON object.
var errNotObject = errors.New("expected a JSON object")

// bodyLimit is the most bytes a body may have, with the reason, for the 413
// answer ("the payload is larger than messages.max_message_size allows").
type bodyLimit struct {
	n   int64
	why string
}

// controlLimit is the limit of the bodies of control endpoints.
var controlLimit = bodyLimit{n: maxControlBody, why: "control requests are small JSON objects"}

// decodeJSON decodes exactly one JSON object from r into v, refusing unknown
// fields, a value that is not an object, and anything but whitespace after
// it. It reads r to its end.
func decodeJSON(r io.Reader, v any) error {
	br := bufio.NewReaderSize(r, 512)
	// Skip leading whitespace, then insist on an object: "null", "[]" or a
	// number would decode into a zero request without an error.
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w, got an empty body", errNotObject)
		}
		if err != nil {
			return err
		}
		if !isSpace(c) {
			_ = br.UnreadByte()
			if c != '{' {
				return fmt.Errorf("%w, got one starting with %q", errNotObject, c)
			}
			break
		}
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // a body that ends inside the object
		}
		return jsonError(err)
	}
	end := dec.InputOffset()
	rest := io.MultiReader(dec.Buffered(), br)
	var buf [512]byte
	for {
		n, err := rest.Read(buf[:])
		for i, c := range buf[:n] {
			if !isSpace(c) {
				return fmt.Errorf("%w (byte %d)", errTrailingData, end+int64(i))
			}
		}
		end += int64(n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// jsonError words a decoding error in the JSON's terms: the field as the
// body spells it and the kind of value it takes, never Go's struct and type
// names ("BulkMessage.payload of type []uint8").
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return fmt.Errorf("expected %s, got a JSON %s", jsonKind(te.Type), te.Value)
		}
		return fmt.Errorf("field %q: expected %s, got a JSON %s", field, jsonKind(te.Type), te.Value)
	}
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return fmt.Errorf("a payload field is not valid base64 (byte %d): payloads are base64 strings", int64(ce))
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: "); ok {
		return errors.New(msg) // unknown field "x", and the like
	}
	return err // the body's reader failed: over its limit, late
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch {
	case t == nil:
		return "a value of the documented form"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "a base64 string"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "an object"
	case t.Kind() == reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value of the documented form"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// maxDrain bounds the bytes of a refused body read (and dropped) before the
// answer, within rejectDrain.
const maxDrain = 96 << 20

// drainBody reads and drops up to max bytes of r's body for at most
// rejectDrain, so that a client that writes its whole body before reading
// (net/http's does) reads the answer instead of failing on a reset.
func drainBody(r *http.Request, max int64) {
	if db, ok := r.Body.(*deadlineBody); ok {
		db.setDeadline(time.Now().Add(rejectDrain))
	}
	_, _ = io.CopyN(io.Discard, r.Body, max)
}

// readBody decodes the JSON body of r into v (see decodeJSON), reading at
// most limit.n bytes. On failure it answers and returns false: 413 for a
// body over the limit, 408 for one that did not arrive within
// api.read_timeout, 400 for anything else, each naming the endpoint and
// what was expected; doc names the page of the endpoint's reference.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit bodyLimit, doc string, v any) bool {
	err := decodeJSON(http.MaxBytesReader(w, r.Body, limit.n), v)
	if err == nil {
		return true
	}
	var mb *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mb):
		s.refused(reasonBodyTooLarge)
		w.Header().Set("Connection", "close") // the rest of the body is not read
		size := ""
		if r.ContentLength > 0 {
			// base64 carries 3 payload bytes in 4.
			size = fmt.Sprintf(" (%d bytes: a payload of about %d bytes)", r.ContentLength, r.ContentLength/4*3)
		}
		// A client still writing the rest gets the answer, not a broken pipe.
		drainBody(r, maxDrain)
		writeError(w, withCode(client.CodeBodyTooLarge, fmt.Errorf("request body of %s is over %d bytes%s: %s", r.URL.Path, limit.n, size, limit.why)))
	case errors.As(err, &ne) && ne.Timeout():
		s.refused(reasonBodyTimeout)
		w.Header().Set("Connection", "close")
		writeError(w, withCode(client.CodeBodyTimeout, fmt.Errorf("request body of %s did not arrive within api.read_timeout", r.URL.Path)))
	default:
		s.refused(reasonBadBody)
		writeError(w, invalidf("request body of %s: expected JSON of the documented form (%s): %v", r.URL.Path, doc, err))
	}
	return false
}
