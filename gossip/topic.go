package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerPollInterval is how often Publish re-checks an empty topic for peers.
const peerPollInterval = 50 * time.Millisecond

// pubsubHeadroom is how much larger pubsub's channel to a Subscription is
// than the Subscription's own buffer: the messages that may arrive while
// its pump goroutine waits to be scheduled.
const pubsubHeadroom = 1024

// Topic is a joined topic. Get one from Service.Join.
type Topic struct {
	s           *Service
	name, full  string
	pt          *pubsub.Topic
	relayCancel pubsub.RelayCancelFunc
	stats       *topicStats
}

// Name is the topic's name, without the network namespace.
func (t *Topic) Name() string { return t.name }

// Peers lists the connected peers subscribed to (or relaying) the topic.
func (t *Topic) Peers() []peer.ID { return t.pt.ListPeers() }

// Info describes the topic and its counters.
func (t *Topic) Info() TopicInfo { return t.stats.info(len(t.pt.ListPeers())) }

// Publish signs data and sends it to the topic's members.
//
// A payload over MaxMessageSize fails with ErrTooLarge, naming both sizes.
// If no peer is subscribed yet, Publish waits for one — until ctx's
// deadline when ctx has one, otherwise up to Options.PublishTimeout (or
// until ctx is cancelled) — and fails with ErrNoPeers ("no peers subscribed
// to topic X after T") if none comes: it never publishes into an empty topic
// and reports success. A
// Reject or Ignore from the topic's validator fails the publish too.
// Success means the message left for at least one peer's queue; delivery
// to every member is not acknowledged (watch Dropped in Topics()).
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	if err := t.s.checkSize(t.name, data); err != nil {
		return err
	}
	if err := t.waitForPeers(ctx); err != nil {
		return fmt.Errorf("gossip: publish to %q: %w", t.name, err)
	}
	// pubsub keeps the slice (in its message cache, for gossip
	// retransmission) after Publish returns; copy it so the caller may
	// reuse its buffer.
	if err := t.pt.Publish(ctx, bytes.Clone(data)); err != nil {
		var verr pubsub.ValidationError
		if errors.As(err, &verr) {
			return kindf(ErrRejected, "gossip: publish to %q: refused by validation (%s): %w", t.name, verr.Reason, err)
		}
		if t.s.ctx.Err() != nil {
			return fmt.Errorf("gossip: publish to %q: %w", t.name, ErrClosed)
		}
		if errors.Is(err, pubsub.ErrTopicClosed) {
			return kindf(ErrLeft, "gossip: publish to %q: topic was left; join it again: %w", t.name, err)
		}
		return fmt.Errorf("gossip: publish to %q: %w", t.name, err)
	}
	t.stats.addPublished()
	return nil
}

// waitForPeers returns once the topic has a subscribed peer. It waits
// until ctx's deadline, or without one up to Options.PublishTimeout.
func (t *Topic) waitForPeers(ctx context.Context) error {
	if len(t.pt.ListPeers()) > 0 {
		return nil
	}
	start := time.Now()
	wctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, t.s.opts.PublishTimeout)
		defer cancel()
	}
	tick := time.NewTicker(peerPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if len(t.pt.ListPeers()) > 0 {
				return nil
			}
		case <-t.s.ctx.Done():
			return ErrClosed
		case <-wctx.Done():
			waited := time.Since(start).Round(time.Millisecond)
			if err := ctx.Err(); err != nil {
				// The caller gave up first; say both what and why.
				return fmt.Errorf("%w to topic %q after %s: %w", ErrNoPeers, t.name, waited, err)
			}
			return fmt.Errorf("%w to topic %q after %s (PublishTimeout)", ErrNoPeers, t.name, waited)
		}
	}
}

// Subscribe returns a new Subscription to the topic's messages, including
// those this node publishes.
func (t *Topic) Subscribe(opts SubscribeOptions) (*Subscription, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, kindf(ErrInvalid, "gossip: subscribe to %q: %w", t.name, err)
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("gossip: subscribe to %q: %w", t.name, ErrClosed)
	}
	if s.topics[t.name] != t {
		return nil, kindf(ErrLeft, "gossip: subscribe to %q: topic was left; join it again", t.name)
	}
	// The pump drains pubsub's channel as fast as messages arrive, so that
	// channel only absorbs scheduling hiccups. It is pubsubHeadroom larger
	// than our buffer, so a reader that falls behind overflows ours, where
	// Dropped counts the loss, rather than pubsub's ("subscriber_slow").
	ps, err := t.pt.Subscribe(pubsub.WithBufferSize(opts.Buffer + pubsubHeadroom))
	if err != nil {
		return nil, fmt.Errorf("gossip: subscribe to %q: %w", t.name, err)
	}
	sub := &Subscription{
		t:    t,
		ps:   ps,
		ch:   make(chan *Message, opts.Buffer),
		done: make(chan struct{}),
	}
	s.subs[sub] = struct{}{}
	t.stats.subscriptions.Add(1)
	s.wg.Add(1)
	go sub.pump(s.ctx)
	return sub, nil
}

// Close leaves the topic (Service.Leave): this node stops relaying it and
// forgets it. It fails with ErrInUse while Subscriptions to it are open.
// Join returns one Topic per name, so Close ends it for every holder; a
// Topic closed is left, and Join makes a new one. Closing a topic already
// left is a no-op.
func (t *Topic) Close() error {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics[t.name] != t {
		return nil
	}
	if n := t.stats.subscriptions.Load(); n > 0 {
		return kindf(ErrInUse, "gossip: leave %q: %d subscription(s) still open; close them first", t.name, n)
	}
	delete(s.topics, t.name)
	return t.leave()
}

// leave stops relaying the topic and closes pubsub's handle. Its
// Subscriptions must already be cancelled.
func (t *Topic) leave() error {
	t.relayCancel()
	if err := t.pt.Close(); err != nil && t.s.ctx.Err() == nil {
		return fmt.Errorf("gossip: leave %q: %w", t.name, err)
	}
	return nil
}
