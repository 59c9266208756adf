// Package errkind gives an error a kind that callers branch on with
// errors.Is, without adding to its text: msg, gossip and tunnel wrap every
// error of theirs this way ("tunnel: target ...: invalid tunnel spec" would
// repeat what the message already says).
package errkind

import "fmt"

// Error prints as its cause and matches its kind with errors.Is.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Errorf is fmt.Errorf(format, a...) of the given kind.
func Errorf(kind error, format string, a ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, a...)}
}
