package msg

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A reply over the requester's limit fails the request at once (not at its
// timeout) with an error naming the reply's size and the limit; one over
// the responder's own limit does too, as a remote error.
func TestReplyTooLargeFailsAtOnce(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	a := newService(t, ha, Options{MaxMessageSize: 1000})      // requester
	b := newService(t, hb, Options{MaxMessageSize: 100 << 10}) // responder
	reg, err := b.Handle("big", func(context.Context, *Message) ([]byte, error) {
		return make([]byte, 5000), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	start := time.Now()
	_, err = a.Request(ctxT(t, 20*time.Second), hb.ID(), "big", nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "5000") || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("got %v, want ErrTooLarge naming 5000 and 1000", err)
	}
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got a timeout: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the error took %v", d)
	}
	if a.Stats().PendingRequests != 0 {
		t.Fatal("request still pending")
	}

	// The responder's own limit: the reply is refused there and the
	// requester gets its error. (Fresh services: b's reply stream was just
	// reset by a, and a frame written before b sees that is lost.)
	hb2 := newHost(t)
	connect(t, ha, hb2)
	b = newService(t, hb2, Options{MaxMessageSize: 100 << 10})
	_, err = b.Request(ctxT(t, 20*time.Second), ha.ID(), "big", nil)
	var re *RemoteError
	if !errors.As(err, &re) { // a has no handler yet
		t.Fatalf("got %v", err)
	}
	if !errors.Is(err, ErrNoHandler) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("no handler: got %v", err)
	}
	regA, err := a.Handle("big", func(context.Context, *Message) ([]byte, error) { return make([]byte, 3000), nil })
	if err != nil {
		t.Fatal(err)
	}
	defer regA.Close()
	start = time.Now()
	_, err = b.Request(ctxT(t, 20*time.Second), ha.ID(), "big", nil)
	if !errors.As(err, &re) || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "3000") || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("got %v, want a remote ErrTooLarge naming 3000 and 1000", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the error took %v", d)
	}
}

func TestTypedErrors(t *testing.T) {
	a, b := pair(t, Options{MaxMessageSize: 10, RequestTimeout: 100 * time.Millisecond})
	ctx := ctxT(t, 10*time.Second)
	if err := a.Send(ctx, b.h.ID(), "x", make([]byte, 11), SendOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized send: %v", err)
	}
	if err := a.Send(ctx, b.h.ID(), "bad type!", nil, SendOptions{}); !errors.Is(err, ErrInvalid) || strings.Count(err.Error(), "msg:") != 1 {
		t.Errorf("bad type: %v", err)
	}
	if err := a.Send(ctx, a.h.ID(), "x", nil, SendOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("send to self: %v", err)
	}
	if err := ValidateType(""); !errors.Is(err, ErrInvalid) || strings.HasPrefix(err.Error(), "msg:") {
		t.Errorf("ValidateType: %v", err)
	}
	if _, err := ParsePriority("urgent"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParsePriority: %v", err)
	}
	reg, err := b.Handle("slow", func(ctx context.Context, _ *Message) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Handle("slow", func(context.Context, *Message) ([]byte, error) { return nil, nil }); !errors.Is(err, ErrExists) {
		t.Errorf("second handler: %v", err)
	}
	if _, err := a.Request(context.Background(), b.h.ID(), "slow", nil); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
	// Closing the registration frees the type; closing it again is a no-op.
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	_ = reg.Close()
	reg2, err := b.Handle("slow", func(context.Context, *Message) ([]byte, error) { return []byte("ok"), nil })
	if err != nil {
		t.Fatalf("handler after Close: %v", err)
	}
	_ = reg.Close() // the old registration does not remove the new handler
	if m, err := a.Request(ctx, b.h.ID(), "slow", nil); err != nil || string(m.Payload) != "ok" {
		t.Fatalf("request after re-registering: %v", err)
	}
	_ = reg2.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, b.h.ID(), "x", nil, SendOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
	if _, err := a.Subscribe("x", SubscribeOptions{}); !errors.Is(err, ErrClosed) || strings.Count(err.Error(), "msg:") != 1 {
		t.Errorf("subscribe after close: %v", err)
	}
}
