package msg

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Default subscription settings.
const (
	DefaultSubscribeBuffer = 1024
	DefaultDedupWindow     = 65536
)

// SubscribeOptions configure one subscription.
type SubscribeOptions struct {
	// Buffer is the most messages queued for this subscriber (default 1024).
	Buffer int
	// MaxBytes is the most payload bytes queued for this subscriber
	// (default Options.SubscribeMaxBytes, 16 MiB). A message always fits
	// into an empty queue, so one larger than MaxBytes still gets through,
	// alone.
	MaxBytes int
	// Policy says what happens when Buffer or MaxBytes is full (default
	// Block). DropOldest evicts as many queued messages as it takes to make
	// room, each counted as dropped.
	Policy Policy
	// Dedup drops a message whose (sender, id) this subscription has already
	// delivered or still holds queued. Ids are remembered in a bounded window
	// (DedupWindow, default 65536). A message dropped by the overflow policy is
	// forgotten, so a retransmission of it is delivered.
	Dedup       bool
	DedupWindow int
}

// Subscription receives every message of one type (fan-out: each subscription
// of the type gets its own reference to every message).
type Subscription struct {
	svc      *Service
	ts       *typeState
	id       uint64
	policy   Policy
	buffer   int
	maxBytes int

	mu      sync.Mutex
	ring    []*Message // capacity == buffer
	head, n int
	bytes   int // payload bytes queued
	closed  bool
	waiting int        // consumers waiting in Next
	blocked int        // producers waiting for room (Block policy)
	room    *sync.Cond // on mu; signalled when room appears or on close
	dedup   *dedupSet  // nil unless Dedup
	notify  chan struct{}
	done    chan struct{}

	delivered, dropped, duplicates atomic.Uint64
}

func newSubscription(svc *Service, ts *typeState, id uint64, opts SubscribeOptions) *Subscription {
	sub := &Subscription{
		svc:    svc,
		ts:     ts,
		id:     id,
		policy: opts.Policy,
		buffer: opts.Buffer,
		ring:   make([]*Message, opts.Buffer),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	sub.maxBytes = opts.MaxBytes
	sub.room = sync.NewCond(&sub.mu)
	if opts.Dedup {
		sub.dedup = newDedupSet(opts.DedupWindow)
	}
	return sub
}

func (o *SubscribeOptions) normalize(defaultMaxBytes int) error {
	if o.Buffer < 0 {
		return fmt.Errorf("msg: SubscribeOptions.Buffer is %d; want >= 0 (0 means %d)", o.Buffer, DefaultSubscribeBuffer)
	}
	if o.Buffer == 0 {
		o.Buffer = DefaultSubscribeBuffer
	}
	if o.MaxBytes < 0 {
		return fmt.Errorf("msg: SubscribeOptions.MaxBytes is %d; want >= 0 (0 means %d)", o.MaxBytes, defaultMaxBytes)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if !o.Policy.valid() {
		return fmt.Errorf("msg: SubscribeOptions.Policy is %d; want Block, DropOldest or DropNewest", int(o.Policy))
	}
	if o.DedupWindow < 0 {
		return fmt.Errorf("msg: SubscribeOptions.DedupWindow is %d; want >= 0 (0 means %d)", o.DedupWindow, DefaultDedupWindow)
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	return nil
}

// Type returns the subscribed message type.
func (sub *Subscription) Type() string { return sub.ts.name }

// Dropped returns how many messages this subscription lost to its overflow
// policy or to Close.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Delivered returns how many messages Next/NextBatch have returned.
func (sub *Subscription) Delivered() uint64 { return sub.delivered.Load() }

// Duplicates returns how many messages Dedup discarded.
func (sub *Subscription) Duplicates() uint64 { return sub.duplicates.Load() }

// Next waits for and returns the next message. It returns ErrClosed once the
// subscription is closed, or ctx's error. Safe for concurrent use.
func (sub *Subscription) Next(ctx context.Context) (*Message, error) {
	sub.mu.Lock()
	if err := sub.waitLocked(ctx); err != nil {
		return nil, err
	}
	m := sub.popLocked()
	sub.tookLocked()
	sub.mu.Unlock()
	sub.delivered.Add(1)
	return m, nil
}

// NextBatch waits until at least one message is queued, then appends up to
// cap(buf)-len(buf) queued messages (at least one) to buf and returns it.
// Draining in batches costs one lock per batch instead of one per message.
func (sub *Subscription) NextBatch(ctx context.Context, buf []*Message) ([]*Message, error) {
	room := cap(buf) - len(buf)
	if room <= 0 {
		return buf, fmt.Errorf("msg: NextBatch: buf has no spare capacity (len %d, cap %d)", len(buf), cap(buf))
	}
	sub.mu.Lock()
	if err := sub.waitLocked(ctx); err != nil {
		return buf, err
	}
	k := min(room, sub.n)
	for range k {
		buf = append(buf, sub.popLocked())
	}
	sub.tookLocked()
	sub.mu.Unlock()
	sub.delivered.Add(uint64(k))
	return buf, nil
}

// waitLocked waits (mu held on entry) until a message is queued. On success mu
// is still held; on error it has been released.
func (sub *Subscription) waitLocked(ctx context.Context) error {
	for sub.n == 0 {
		if sub.closed {
			sub.mu.Unlock()
			return ErrClosed
		}
		sub.waiting++
		sub.mu.Unlock()
		select {
		case <-sub.notify:
		case <-sub.done:
		case <-ctx.Done():
			sub.mu.Lock()
			sub.waiting--
			sub.mu.Unlock()
			return ctx.Err()
		}
		sub.mu.Lock()
		sub.waiting--
	}
	return nil
}

func (sub *Subscription) popLocked() *Message {
	m := sub.ring[sub.head]
	sub.ring[sub.head] = nil
	sub.head++
	if sub.head == len(sub.ring) {
		sub.head = 0
	}
	sub.n--
	sub.bytes -= len(m.Payload)
	return m
}

// fullLocked reports whether m does not fit: the ring is full, or m would
// take the queued bytes over maxBytes (an empty queue always takes it).
func (sub *Subscription) fullLocked(m *Message) bool {
	return sub.n == len(sub.ring) || (sub.n > 0 && sub.bytes+len(m.Payload) > sub.maxBytes)
}

// tookLocked wakes blocked producers and passes the turn to another consumer.
func (sub *Subscription) tookLocked() {
	if sub.blocked > 0 {
		sub.room.Broadcast()
	}
	if sub.n > 0 && sub.waiting > 0 {
		sub.wake()
	}
}

func (sub *Subscription) wake() {
	select {
	case sub.notify <- struct{}{}:
	default:
	}
}

// deliver queues m according to the policy. It blocks (Block policy) until
// there is room or the subscription closes.
func (sub *Subscription) deliver(m *Message) {
	sub.mu.Lock()
	if sub.closed {
		sub.mu.Unlock()
		sub.countDrop(1)
		return
	}
	var key dedupKey
	if sub.dedup != nil {
		key = dedupKey{from: m.From, id: m.ID}
		if sub.dedup.has(key) {
			sub.mu.Unlock()
			sub.ts.duplicates.Add(1)
			sub.duplicates.Add(1)
			return
		}
	}
	if sub.fullLocked(m) {
		switch sub.policy {
		case Block:
			for sub.fullLocked(m) && !sub.closed {
				sub.blocked++
				sub.room.Wait()
				sub.blocked--
			}
			if sub.closed { // shut counted this message as dropped
				sub.mu.Unlock()
				return
			}
			if sub.dedup != nil && sub.dedup.has(key) { // arrived meanwhile on another stream
				sub.mu.Unlock()
				sub.ts.duplicates.Add(1)
				sub.duplicates.Add(1)
				return
			}
		case DropNewest:
			sub.mu.Unlock()
			sub.countDrop(1)
			return
		case DropOldest:
			for sub.fullLocked(m) {
				old := sub.popLocked()
				if sub.dedup != nil {
					sub.dedup.forget(dedupKey{from: old.From, id: old.ID})
				}
				sub.countDrop(1)
			}
		}
	}
	tail := sub.head + sub.n
	if tail >= len(sub.ring) {
		tail -= len(sub.ring)
	}
	sub.ring[tail] = m
	sub.n++
	sub.bytes += len(m.Payload)
	if sub.dedup != nil {
		sub.dedup.add(key)
	}
	if sub.waiting > 0 {
		sub.wake()
	}
	sub.mu.Unlock()
}

// countDrop counts on the type, then on the subscription (as duplicates
// are): whoever sees a subscription's count (its owner, polling Dropped)
// then finds the type's total in Stats up to date too.
func (sub *Subscription) countDrop(n uint64) {
	sub.ts.dropped.Add(n)
	sub.dropped.Add(n)
}

// Close unsubscribes. Messages still queued, and those waiting for room
// (Block), are discarded and counted as dropped before Close returns, so
// Dropped then includes them. Close is idempotent and returns nil.
func (sub *Subscription) Close() error {
	sub.svc.removeSubscription(sub)
	sub.shut()
	return nil
}

// shut marks the subscription closed and wakes everyone waiting on it.
func (sub *Subscription) shut() {
	sub.mu.Lock()
	if sub.closed {
		sub.mu.Unlock()
		return
	}
	sub.closed = true
	// Producers waiting for room lose their message too. They are counted
	// here, not when they wake, so that Dropped is final when Close returns.
	lost := sub.n + sub.blocked
	for i := range sub.ring {
		sub.ring[i] = nil
	}
	sub.n, sub.head, sub.bytes = 0, 0, 0
	close(sub.done)
	sub.room.Broadcast()
	sub.mu.Unlock()
	if lost > 0 {
		sub.countDrop(uint64(lost))
		sub.svc.log.Info("msg: subscription closed with queued messages; counted as dropped",
			"type", sub.ts.name, "subscription", sub.id, "dropped", lost)
	}
}

func (sub *Subscription) queued() int {
	n, _ := sub.queuedBoth()
	return n
}

func (sub *Subscription) queuedBoth() (msgs, bytes int) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.n, sub.bytes
}

// dedupKey identifies a message for deduplication.
type dedupKey struct {
	from peer.ID
	id   ID
}

// dedupSet remembers the last `size` keys added (FIFO window). forget removes
// a key early (used when a queued message is dropped, so a retransmission is
// not mistaken for a duplicate).
type dedupSet struct {
	seen map[dedupKey]uint64 // key -> sequence number when added
	keys []dedupKey          // ring of the last len(keys) additions
	seq  uint64
}

func newDedupSet(size int) *dedupSet {
	return &dedupSet{seen: make(map[dedupKey]uint64, min(size, 4096)), keys: make([]dedupKey, size)}
}

func (d *dedupSet) has(k dedupKey) bool {
	_, ok := d.seen[k]
	return ok
}

func (d *dedupSet) add(k dedupKey) {
	slot := d.seq % uint64(len(d.keys))
	if d.seq >= uint64(len(d.keys)) {
		old := d.keys[slot]
		if s, ok := d.seen[old]; ok && s == d.seq-uint64(len(d.keys)) {
			delete(d.seen, old)
		}
	}
	d.keys[slot] = k
	d.seen[k] = d.seq
	d.seq++
}

func (d *dedupSet) forget(k dedupKey) { delete(d.seen, k) }
