package msg

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warren-p2p/warren/internal/testutil"
)

// Every goroutine the service starts (writers, readers, handlers, stream
// opens) ends by Close, even with a stalled Block subscriber, a blocked
// Send, a running handler and a pending request.
func TestNoGoroutineLeakAfterClose(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	opts := goleak.IgnoreCurrent()
	a, err := New(context.Background(), ha, Options{SendQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), hb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Second)
	if _, err := b.Subscribe("stall", SubscribeOptions{Buffer: 1}); err != nil {
		t.Fatal(err)
	}
	handlerRunning := make(chan struct{})
	if _, err := b.Handle("hang", func(ctx context.Context, m *Message) ([]byte, error) {
		close(handlerRunning)
		<-ctx.Done()
		return nil, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	reqErr := make(chan error, 1)
	go func() {
		_, err := a.Request(ctx, hb.ID(), "hang", nil)
		reqErr <- err
	}()
	<-handlerRunning
	// Fill the stream until Send blocks on the full queue.
	payload := make([]byte, 64<<10)
	sendErr := make(chan error, 1)
	go func() {
		for {
			if err := a.Send(ctx, hb.ID(), "stall", payload, SendOptions{}); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	testutil.Eventually(t, 10*time.Second, "send queue full", func() bool {
		ps := a.Stats().Peers
		return len(ps) == 1 && ps[0].Queued.Normal == 4
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-sendErr; err == nil {
		t.Fatal("blocked Send returned nil after Close")
	}
	if err := <-reqErr; err == nil { // b closed first: a sees the stream reset (or ErrClosed)
		t.Fatal("pending request returned nil after Close")
	}
	goleak.VerifyNone(t, opts)
}

// A Block subscriber that does not read stalls the sender all the way back
// to Send, which then waits until its ctx ends and says why.
func TestBlockBackpressureReachesSend(t *testing.T) {
	a, b := pair(t, Options{SendQueue: 8})
	sub, err := b.Subscribe("bp", SubscribeOptions{Buffer: 1, Policy: Block})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 16<<10)
	sent := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := a.Send(ctx, b.h.ID(), "bp", payload, SendOptions{})
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "queue full") {
				t.Fatalf("blocked send: %v", err)
			}
			break
		}
		sent++
		if sent > 10000 {
			t.Fatal("Send never blocked")
		}
	}
	// Everything accepted is delivered once the subscriber reads.
	ctx := ctxT(t, 10*time.Second)
	for i := range sent {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatalf("message %d of %d: %v", i, sent, err)
		}
	}
	if sub.Dropped() != 0 {
		t.Fatalf("dropped %d", sub.Dropped())
	}
	t.Logf("Send blocked after %d messages of 16 KiB", sent)
}
