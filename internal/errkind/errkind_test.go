package errkind

import (
	"context"
	"errors"
	"testing"
)

func TestErrorfKeepsTextAndMatchesKindAndCause(t *testing.T) {
	kind := errors.New("invalid argument")
	err := Errorf(kind, "option %q: %w", "x", context.DeadlineExceeded)
	if got, want := err.Error(), `option "x": context deadline exceeded`; got != want {
		t.Errorf("text %q, want %q (the kind adds nothing to it)", got, want)
	}
	if !errors.Is(err, kind) {
		t.Error("does not match its kind")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("does not match the error it wraps")
	}
	if errors.Is(err, errors.New("invalid argument")) {
		t.Error("matches another sentinel with the same text")
	}
}
