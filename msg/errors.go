package msg

import (
	"errors"
	"strings"

	"github.com/warren-p2p/warren/internal/errkind"
)

// Errors callers branch on with errors.Is. Every error of the package wraps
// at most one of them, once, behind the operation's own words ("msg: send
// "chat" to 12D3...: payload is 5000 bytes, over the limit of 4096 bytes:
// message too large").
var (
	// ErrInvalid: an argument is malformed (a type name, a priority, a
	// policy, an option, an empty or own peer ID, a nil handler).
	ErrInvalid = errors.New("invalid argument")
	// ErrTooLarge: a payload, or a request's reply, is over
	// Options.MaxMessageSize of this node or (for a reply) of the
	// responder; the error names the size and the limit.
	ErrTooLarge = errors.New("message too large")
	// ErrTimeout: a Request got no reply before its deadline (the error
	// wraps context.DeadlineExceeded too).
	ErrTimeout = errors.New("no reply in time")
	// ErrNoHandler: the remote peer has no handler for a request's type
	// (wrapped by a *RemoteError).
	ErrNoHandler = errors.New("no handler")
	// ErrExists: a handler is already registered for the type.
	ErrExists = errors.New("already registered")
	// ErrClosed: the Service, Subscription or Handler is closed.
	ErrClosed = errors.New("closed")
)

// Texts of the errors a responder sends back, by which Request recognises
// them (the wire carries only an error's text).
const (
	noHandlerText = "no handler for type "
	replyTooLarge = "reply of "
)

// Is makes errors.Is(err, ErrNoHandler) true for a remote peer that had no
// handler, and errors.Is(err, ErrTooLarge) for a reply over the responder's
// limit.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrNoHandler:
		return strings.HasPrefix(e.Message, noHandlerText)
	case ErrTooLarge:
		return strings.HasPrefix(e.Message, replyTooLarge) && strings.Contains(e.Message, ErrTooLarge.Error())
	}
	return false
}

// kindf is fmt.Errorf(format, a...) of the given kind: errors.Is matches
// the kind and whatever the error wraps, and the text is the message's alone.
func kindf(kind error, format string, a ...any) error { return errkind.Errorf(kind, format, a...) }
