package gossip

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// Subscription receives a topic's messages. Next may be called from one
// goroutine at a time; Close and Dropped from any.
type Subscription struct {
	t       *Topic
	ps      *pubsub.Subscription
	ch      chan *Message
	done    chan struct{} // closed when the pump has exited
	dropped atomic.Uint64
	once    sync.Once
}

// Topic is the subscribed topic's name.
func (sub *Subscription) Topic() string { return sub.t.name }

// Next returns the next message, waiting until one arrives, ctx ends, or
// the Subscription (or its Service) is closed. After Close it returns the
// messages already buffered, then an error wrapping ErrClosed.
func (sub *Subscription) Next(ctx context.Context) (*Message, error) {
	select {
	case m, ok := <-sub.ch:
		if !ok {
			return nil, fmt.Errorf("gossip: subscription to %q: %w", sub.t.name, ErrClosed)
		}
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("gossip: subscription to %q: next: %w", sub.t.name, ctx.Err())
	}
}

// Dropped counts messages lost because this Subscription's buffer was full
// when they arrived (the reader was behind). Each is also counted on the
// topic as "subscription_full". pubsub's own channel to the Subscription
// has room for the buffer and 1024 more messages, so it overflows (counted
// on the topic as "subscriber_slow") only if the Subscription's pump
// goroutine is starved of CPU for that many arrivals: a reader's slowness
// alone never causes it, and received + Dropped accounts for every message.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close cancels the Subscription and waits for its goroutine to stop.
// Closing twice is harmless.
func (sub *Subscription) Close() error {
	sub.cancel()
	<-sub.done
	return nil
}

// cancel detaches the Subscription from pubsub and from its Service; the
// pump then sees pubsub's channel close and exits.
func (sub *Subscription) cancel() {
	sub.once.Do(func() {
		sub.ps.Cancel()
		s := sub.t.s
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		sub.t.stats.subscriptions.Add(-1)
	})
}

// pump moves messages from pubsub's channel into ours without ever
// blocking pubsub: if our buffer is full, the message is dropped and
// counted. It exits when pubsub closes the subscription or ctx ends.
func (sub *Subscription) pump(ctx context.Context) {
	defer sub.t.s.wg.Done()
	defer close(sub.done)
	defer close(sub.ch)
	for {
		pm, err := sub.ps.Next(ctx)
		if err != nil {
			return
		}
		m := newMessage(sub.t.name, pm, time.Now())
		select {
		case sub.ch <- m:
		default:
			sub.dropped.Add(1)
			sub.t.stats.addDropped(dropSubscriptionFull)
		}
	}
}
