package client

import (
	"errors"
	"fmt"
)

// ErrorBody is the JSON body of every failed API call:
// {"error": "<one line of text>", "code": "<Code constant>"}. The bulk
// endpoints add a count (BulkSendError, BulkPublishError).
type ErrorBody struct {
	Error string `json:"error"` // what failed and why, on one line, for people
	Code  string `json:"code"`  // what kind of failure, for programs: one of the Code constants
}

// The error codes of the API. Each has one HTTP status; a code is never
// renamed within /v1, and new codes may be added. docs/api.md describes
// when each is answered.
const (
	CodeInvalidArgument      = "invalid_argument"       // 400: the request is malformed or a value is out of range
	CodeUnauthorized         = "unauthorized"           // 401: TCP without the right bearer token
	CodeForbidden            = "forbidden"              // 403: TCP with a Host header that is not the listener's
	CodeNotFound             = "not_found"              // 404: no such route, peer connection, pending request or stream
	CodeMethodNotAllowed     = "method_not_allowed"     // 405: the route exists with another method
	CodeBodyTimeout          = "body_timeout"           // 408: the request body did not arrive within api.read_timeout
	CodeConflict             = "conflict"               // 409: already taken (a responder for the type, a tunnel, a port)
	CodeBodyTooLarge         = "body_too_large"         // 413: the body or one of its lines is over its limit
	CodeUnsupportedMediaType = "unsupported_media_type" // 415: a bulk body's Content-Type is neither text/plain nor application/x-ndjson
	CodeInternal             = "internal"               // 500: the daemon failed (e.g. saving its state)
	CodeUnsupported          = "unsupported"            // 501: this node cannot do it (POST /v1/shutdown on a node not run by warren daemon)
	CodeUnreachable          = "unreachable"            // 502: the peer could not be reached, or the network failed
	CodeRemoteError          = "remote_error"           // 502: the peer's responder answered with an error
	CodeUnavailable          = "unavailable"            // 503: the daemon is shutting down, or the TCP API is at api.max_tcp_conns
	CodeTimeout              = "timeout"                // 504: the operation did not finish in time
	CodeNoPeers              = "no_peers"               // 504: no peer subscribed to the topic within the publish timeout
)

// Error is an error answer of the daemon.
type Error struct {
	Status  int    // HTTP status
	Code    string // one of the Code constants; "" if the answer was not the API's JSON
	Message string // the body's "error"
}

func (e *Error) Error() string { return e.Message }

// String describes the error with its status and code, for logs.
func (e *Error) String() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// ErrorCode returns the code of the *Error in err's chain, or "" when
// there is none (the daemon could not be reached, a stream broke).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
