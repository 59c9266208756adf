package api

// Errors: every failed call answers {"error": "<one line>", "code": "<code>"}
// (client.ErrorBody), and classify alone decides the HTTP status and the
// code of an error.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"
)

// codeStatus is the HTTP status of each error code.
var codeStatus = map[string]int{
	client.CodeInvalidArgument:      http.StatusBadRequest,
	client.CodeUnauthorized:         http.StatusUnauthorized,
	client.CodeForbidden:            http.StatusForbidden,
	client.CodeNotFound:             http.StatusNotFound,
	client.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	client.CodeBodyTimeout:          http.StatusRequestTimeout,
	client.CodeConflict:             http.StatusConflict,
	client.CodeBodyTooLarge:         http.StatusRequestEntityTooLarge,
	client.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	client.CodeInternal:             http.StatusInternalServerError,
	client.CodeUnsupported:          http.StatusNotImplemented,
	client.CodeUnreachable:          http.StatusBadGateway,
	client.CodeRemoteError:          http.StatusBadGateway,
	client.CodeUnavailable:          http.StatusServiceUnavailable,
	client.CodeTimeout:              http.StatusGatewayTimeout,
	client.CodeNoPeers:              http.StatusGatewayTimeout,
}

// codedError is an error whose code the handler decided: classify answers
// that code whatever the error wraps.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode gives err the code (a client.Code constant).
func withCode(code string, err error) error { return &codedError{code: code, err: err} }

// invalid marks an error of the request: 400 invalid_argument.
func invalid(err error) error { return withCode(client.CodeInvalidArgument, err) }

// invalidf is invalid(fmt.Errorf(format, a...)).
func invalidf(format string, a ...any) error { return invalid(fmt.Errorf(format, a...)) }

// fallbackError gives err a code used only when no library error it wraps
// says more (a dial error that is a timeout is a timeout, not unreachable).
type fallbackError struct {
	code string
	err  error
}

func (e *fallbackError) Error() string { return e.err.Error() }
func (e *fallbackError) Unwrap() error { return e.err }

// orElse gives err the code unless classify knows a more specific one.
func orElse(code string, err error) error { return &fallbackError{code: code, err: err} }

// classify maps an error to its HTTP status and code: the code a handler
// gave it (withCode), else the code of the library error it wraps, else
// the handler's fallback (orElse), else that of a failed local bind, else
// internal (500).
func classify(err error) (status int, code string) {
	code = client.CodeInternal
	var ce *codedError
	var re *msg.RemoteError
	var fe *fallbackError
	switch {
	case errors.As(err, &ce):
		code = ce.code
	case errors.As(err, &re):
		code = client.CodeRemoteError
	case errors.Is(err, tunnel.ErrInvalid), errors.Is(err, gossip.ErrTooLarge), errors.Is(err, gossip.ErrInvalidTopic),
		errors.Is(err, msg.ErrInvalid), errors.Is(err, msg.ErrTooLarge), errors.Is(err, node.ErrSelf):
		code = client.CodeInvalidArgument
	case errors.Is(err, tunnel.ErrExists), errors.Is(err, msg.ErrExists), errors.Is(err, gossip.ErrInUse):
		code = client.CodeConflict
	case errors.Is(err, tunnel.ErrClosed), errors.Is(err, gossip.ErrClosed), errors.Is(err, msg.ErrClosed),
		errors.Is(err, gossip.ErrTooManyTopics):
		code = client.CodeUnavailable
	case errors.Is(err, gossip.ErrNoPeers):
		code = client.CodeNoPeers
	case errors.Is(err, node.ErrUnreachable):
		// Before the timeouts: a peer whose lookup timed out is unreachable,
		// and the error says what was tried.
		code = client.CodeUnreachable
	case errors.Is(err, msg.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = client.CodeTimeout
	case errors.As(err, &fe):
		code = fe.code
	// Binding a local address (a tunnel's; dials to peers have a fallback
	// above): one that is not this machine's, or a port the daemon may not
	// bind, is the caller's mistake; a port in use is taken.
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EACCES):
		code = client.CodeInvalidArgument
	case errors.Is(err, syscall.EADDRINUSE):
		code = client.CodeConflict
	}
	status, ok := codeStatus[code]
	if !ok {
		status, code = http.StatusInternalServerError, client.CodeInternal
	}
	return status, code
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err (on one line: libp2p's dial errors span several)
// with the status and code classify gives it.
func writeError(w http.ResponseWriter, err error) {
	status, code := classify(err)
	writeJSON(w, status, client.ErrorBody{Error: oneLine(err.Error()), Code: code})
}

// oneLine folds a multi-line error text onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	f := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return strings.Join(f, "; ")
}
