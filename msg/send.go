package msg

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrMessagesLost is wrapped by the error Send returns when messages queued
// earlier for the same peer were lost because its stream failed. The message
// of that Send was not queued; the next Send reopens the stream.
var ErrMessagesLost = errors.New("earlier queued messages were lost")

// SendOptions configure one Send.
type SendOptions struct {
	Priority Priority
	// ID, if non-zero, is used as the message id instead of a generated one,
	// so a retried Send is recognised by Dedup subscribers.
	ID ID
}

// Writer tuning.
const (
	writeBufSize  = 64 << 10 // flush once this much is buffered
	maxBatch      = 256      // frames taken from the queues per lock
	keepFrameSize = 64 << 10 // larger frame buffers are not pooled
)

// frame is one encoded message waiting in a send queue.
type frame struct {
	b  []byte
	ts *typeState
	n  int // payload bytes, for statistics
}

func (s *Service) getFrame() *frame { return s.frames.Get().(*frame) }

func (s *Service) putFrame(f *frame) {
	f.ts = nil
	if cap(f.b) > keepFrameSize {
		return
	}
	f.b = f.b[:0]
	s.frames.Put(f)
}

// Send queues a message of type typ for peer p and returns once it is queued,
// or with an error saying why it was not: invalid type, payload over
// MaxMessageSize, the stream to p cannot be opened (unknown or unreachable
// peer, or p does not run this network), earlier messages to p were lost
// (ErrMessagesLost), ctx ended while the queue was full, or the service is
// closed.
//
// The first Send to a peer opens its stream synchronously, so an unreachable
// peer is reported right away. A later stream failure is logged, counted in
// Stats (per type SendFailed, per peer Failed and LastError) and reported by
// the next Send to that peer. Once queued, delivery is at-most-once: a frame
// written to a stream whose peer then vanishes cannot be accounted for; use
// Request for an end-to-end acknowledgement.
//
// The payload is copied; the caller may reuse it when Send returns.
func (s *Service) Send(ctx context.Context, p peer.ID, typ string, payload []byte, opts SendOptions) error {
	if !opts.Priority.valid() {
		return kindf(ErrInvalid, "msg: send %q to %s: invalid priority %d; want High, Normal or Low", typ, p, int(opts.Priority))
	}
	id := opts.ID
	if id.IsZero() {
		id = s.newID()
	}
	if err := s.send(ctx, p, typ, payload, opts.Priority, &id, 0, 0, 0); err != nil {
		return fmt.Errorf("msg: send %q to %s: %w", typ, p, err)
	}
	return nil
}

// checkSend validates a send and returns the state that counts it. A local
// send of a new type makes the type known (register); a reply does not: its
// type was chosen by the remote requester, so a reply of an unknown type is
// counted as OtherType and remote peers cannot create types or series.
func (s *Service) checkSend(p peer.ID, typ string, payload []byte, register bool) (*typeState, error) {
	ts := s.knownType(typ)
	if ts == nil {
		if err := ValidateType(typ); err != nil {
			return nil, err
		}
	}
	if len(payload) > s.opts.MaxMessageSize {
		return nil, kindf(ErrTooLarge, "payload is %d bytes, over the limit of %d bytes (Options.MaxMessageSize)", len(payload), s.opts.MaxMessageSize)
	}
	if p == "" {
		return nil, kindf(ErrInvalid, "empty peer ID")
	}
	if p == s.h.ID() {
		return nil, kindf(ErrInvalid, "cannot send to self")
	}
	switch {
	case ts != nil:
	case register:
		ts = s.addType(typ)
	default:
		ts = s.other
	}
	return ts, nil
}

// send queues one frame of the local application (a Send or a Request),
// waiting for queue room until ctx ends; its errors are not prefixed (Send
// and Request add what they were doing).
func (s *Service) send(ctx context.Context, p peer.ID, typ string, payload []byte, prio Priority, id *ID, flags, corr, timeout uint64) error {
	return s.sendFrame(ctx, p, typ, payload, prio, id, flags, corr, timeout, true)
}

// errQueueFull is returned by sendFrame without wait when the queue is full.
var errQueueFull = errors.New("send queue full")

// sendFrame queues one frame. Without wait it does not wait for queue room
// (errQueueFull). A response (a reply to a remote request) neither makes its
// type known nor takes the loss report meant for the application's next Send.
func (s *Service) sendFrame(ctx context.Context, p peer.ID, typ string, payload []byte, prio Priority, id *ID, flags, corr, timeout uint64, wait bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	local := flags&flagResponse == 0
	ts, err := s.checkSend(p, typ, payload, local)
	if err != nil {
		return err
	}
	op, err := s.peerFor(ctx, p, local)
	if err != nil {
		return err
	}
	f := s.getFrame()
	f.ts, f.n = ts, len(payload)
	f.b = appendFrame(f.b[:0], typ, id, payload, 0, flags, corr, timeout) // writer stamps the time
	if local && !op.app.Load() {
		op.app.Store(true)
	}
	if err := op.enqueue(ctx, f, prio, wait); err != nil {
		s.putFrame(f)
		return err
	}
	return nil
}

// peerFailure records messages lost on a peer's failed stream until the next
// Send to that peer reports them. Only streams that carried the local
// application's messages leave one (a stream of replies only does not), and
// at most maxFailureRecords are kept: the oldest goes first.
type peerFailure struct {
	lost uint64
	err  error
	at   time.Time
}

// maxFailureRecords bounds the unreported losses kept (see peerFailure).
const maxFailureRecords = 1024

// peerFor returns the live outbound queue of p, opening the stream if needed.
// local is true for the application's own messages: an unreported loss on
// p's previous stream is then returned as an error wrapping ErrMessagesLost
// (once), and the stream may be opened on a new connection. A reply (local
// false) only uses an existing connection: a requester that left is not
// dialled back.
func (s *Service) peerFor(ctx context.Context, p peer.ID, local bool) (*outPeer, error) {
	if local && s.nFailures.Load() > 0 {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if f := s.failures[p]; f != nil {
			s.dropFailureLocked(p)
			s.mu.Unlock()
			return nil, fmt.Errorf("stream failed at %s: %d queued messages lost (%v): %w",
				f.at.Format(time.RFC3339), f.lost, f.err, ErrMessagesLost)
		}
		s.mu.Unlock()
	}
	s.pmu.RLock()
	op := s.peers[p]
	s.pmu.RUnlock()
	if op != nil {
		return op, nil
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if local && s.opts.Reach != nil {
		if err := s.reach(ctx, p); err != nil {
			return nil, err
		}
	}
	key := string(p)
	if !local {
		key = "reply:" + key
	}
	ch := s.opens.DoChan(key, func() (any, error) { return s.open(p, local) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*outPeer), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("open stream: %w", ctx.Err())
	}
}

// reach runs Options.Reach for p, within ReachTimeout and the service's
// life.
func (s *Service) reach(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReachTimeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := s.opts.Reach(ctx, p); err != nil {
		if s.ctx.Err() != nil {
			return ErrClosed
		}
		return err
	}
	return nil
}

// open opens the outbound stream to p and starts its writer. Without dial,
// only an existing connection is used: a reply goes back over the
// connection its request came on, relayed (limited) or not, as the
// requester chose. With dial, a limited connection is used only once
// Options.Reach has accepted it.
func (s *Service) open(p peer.ID, dial bool) (*outPeer, error) {
	s.pmu.RLock()
	op := s.peers[p]
	s.pmu.RUnlock()
	if op != nil {
		return op, nil
	}
	if !s.track() {
		return nil, ErrClosed
	}
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.OpenTimeout)
	defer cancel()
	if !dial {
		if !connected(s.h.Network().Connectedness(p)) {
			return nil, fmt.Errorf("not connected to %s", p)
		}
		ctx = network.WithAllowLimitedConn(network.WithNoDial(ctx, "msg reply"), "msg reply")
	} else if s.opts.Reach != nil {
		ctx = network.WithAllowLimitedConn(ctx, "msg")
	}
	str, err := s.h.NewStream(ctx, p, s.proto)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", s.proto, err)
	}
	if err := str.Scope().SetService(ServiceName); err != nil {
		_ = str.Reset()
		return nil, fmt.Errorf("open stream %s: resource manager: %w", s.proto, err)
	}
	_ = str.CloseRead() // we only write on this stream
	op = newOutPeer(s, p, str)
	// Register under mu so Close either sees this peer or we see Close.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = str.Reset()
		return nil, ErrClosed
	}
	s.pmu.Lock()
	if other := s.peers[p]; other != nil { // a concurrent open (reply and Send) won
		s.pmu.Unlock()
		s.mu.Unlock()
		_ = str.Reset()
		return other, nil
	}
	s.peers[p] = op
	s.pmu.Unlock()
	s.wg.Add(1)
	s.mu.Unlock()
	go op.writeLoop()
	s.log.Debug("msg: opened stream", "peer", p)
	return op, nil
}

// disconnected fails the outbound stream that ran over a closed connection
// (so the next Send reopens it synchronously) and, once we have no
// connection to the peer left, everything else kept about it: its outbound
// stream, the requests waiting for it. Its inbound state ends with its
// streams and handlers. What is left is at most an unreported loss of the
// application's own messages (see peerFailure).
func (s *Service) disconnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	gone := !connected(s.h.Network().Connectedness(p))
	s.pmu.RLock()
	op := s.peers[p]
	s.pmu.RUnlock()
	if op != nil && (gone || op.str.Conn() == c) {
		op.fail(fmt.Errorf("connection to %s closed", p), 0)
	}
	if gone {
		s.failPending(p, fmt.Errorf("peer %s disconnected", p))
	}
}

// connected says whether c leaves a connection to the peer, direct or
// relayed (limited).
func connected(c network.Connectedness) bool {
	return c == network.Connected || c == network.Limited
}

// recordFailureLocked notes an unreported loss on p's stream. mu held.
func (s *Service) recordFailureLocked(p peer.ID, lost uint64, err error) {
	f := s.failures[p]
	if f == nil {
		if len(s.failures) >= maxFailureRecords {
			var oldest peer.ID
			var at time.Time
			for q, g := range s.failures {
				if oldest == "" || g.at.Before(at) {
					oldest, at = q, g.at
				}
			}
			s.dropFailureLocked(oldest)
		}
		f = &peerFailure{}
		s.failures[p] = f
		s.nFailures.Add(1)
	}
	f.lost += lost
	f.err, f.at = err, time.Now()
}

func (s *Service) dropFailureLocked(p peer.ID) {
	if _, ok := s.failures[p]; ok {
		delete(s.failures, p)
		s.nFailures.Add(-1)
	}
}

// outPeer is the outbound side of one peer: three bounded priority queues
// drained by one writer goroutine into one stream.
type outPeer struct {
	s   *Service
	id  peer.ID
	str network.Stream

	mu      sync.Mutex
	q       [numPriorities]frameRing
	dead    bool
	deadErr error
	idle    bool          // writer waits on ready
	ready   chan struct{} // cap 1: wakes the writer
	space   chan struct{} // closed (and replaced) when room appears
	waiters int           // Sends waiting for room
	done    chan struct{} // closed when dead

	sent, failed atomic.Uint64
	app          atomic.Bool // carried a message of the local application
}

func newOutPeer(s *Service, p peer.ID, str network.Stream) *outPeer {
	op := &outPeer{
		s:     s,
		id:    p,
		str:   str,
		ready: make(chan struct{}, 1),
		space: make(chan struct{}),
		done:  make(chan struct{}),
	}
	for i := range op.q {
		op.q[i].init(s.opts.SendQueue)
	}
	return op
}

// enqueue adds f to the queue of prio, waiting while that queue is full
// (without wait, it returns errQueueFull instead).
func (op *outPeer) enqueue(ctx context.Context, f *frame, prio Priority, wait bool) error {
	q := &op.q[prio]
	op.mu.Lock()
	for {
		if op.dead {
			err := op.deadErr
			op.mu.Unlock()
			return fmt.Errorf("stream failed, message not queued: %w", err)
		}
		if q.push(f) {
			if op.idle {
				op.idle = false
				op.ready <- struct{}{}
			}
			op.mu.Unlock()
			return nil
		}
		if !wait {
			op.mu.Unlock()
			return fmt.Errorf("%s %w (%d messages)", prio, errQueueFull, q.cap())
		}
		space := op.space
		op.waiters++
		op.mu.Unlock()
		var err error
		select {
		case <-space:
		case <-op.done:
		case <-ctx.Done():
			err = fmt.Errorf("%s send queue full (%d messages): %w", prio, q.cap(), ctx.Err())
		}
		op.mu.Lock()
		op.waiters--
		if err != nil {
			op.mu.Unlock()
			return err
		}
	}
}

// takeLocked moves up to maxBatch frames into batch by weighted round robin.
func (op *outPeer) takeLocked(batch []*frame) []*frame {
	for len(batch) < maxBatch {
		before := len(batch)
		for i := range numPriorities {
			prio, w := roundOrder(i)
			q := &op.q[prio]
			for ; w > 0 && q.len() > 0 && len(batch) < maxBatch; w-- {
				batch = append(batch, q.pop())
			}
		}
		if len(batch) == before {
			break
		}
	}
	return batch
}

// writeLoop drains the queues into the stream, batching writes: frames are
// copied into one buffer that is written when it is full or when the queues
// are empty.
func (op *outPeer) writeLoop() {
	s := op.s
	defer s.wg.Done()
	batch := make([]*frame, 0, maxBatch)
	buf := make([]byte, 0, writeBufSize)
	var recs []sentRec // frames in buf, for statistics
	// flush writes buf; on error the frames in it are counted as failed.
	flush := func() (lost uint64, err error) {
		if len(buf) == 0 {
			return 0, nil
		}
		_, err = op.str.Write(buf)
		buf = buf[:0]
		if err != nil {
			lost = countRecs(recs, failedRec)
		} else {
			op.sent.Add(countRecs(recs, sentOK))
		}
		recs = recs[:0]
		return lost, err
	}
	// fail counts the frames not yet written as failed and kills the peer.
	fail := func(err error, lost uint64, rest []*frame) {
		for i, f := range rest {
			f.ts.sendFailed.Add(1)
			s.putFrame(f)
			rest[i] = nil
		}
		lost += uint64(len(rest))
		op.failed.Add(lost)
		op.fail(fmt.Errorf("write: %w", err), lost)
	}
	for {
		op.mu.Lock()
		batch = op.takeLocked(batch[:0])
		dead, deadErr := op.dead, op.deadErr
		if len(batch) == 0 && !dead && len(buf) == 0 {
			op.idle = true
		}
		if len(batch) > 0 && op.waiters > 0 {
			close(op.space)
			op.space = make(chan struct{})
		}
		op.mu.Unlock()
		if dead { // fail emptied the queues, so batch is empty
			buf = buf[:0]
			if lost := countRecs(recs, failedRec); lost > 0 {
				op.failed.Add(lost)
				op.fail(deadErr, lost)
			}
			return
		}
		if len(batch) == 0 {
			if len(buf) > 0 {
				if lost, err := flush(); err != nil {
					fail(err, lost, nil)
					return
				}
				continue
			}
			select {
			case <-op.ready:
			case <-op.done:
			}
			continue
		}
		now := time.Now().UnixNano() // one clock read per batch
		for i, f := range batch {
			stampSent(f.b, now)
			if len(buf)+len(f.b) > cap(buf) {
				if lost, err := flush(); err != nil {
					fail(err, lost, batch[i:])
					return
				}
			}
			if len(f.b) > cap(buf) { // big frame: write it directly
				if _, err := op.str.Write(f.b); err != nil {
					fail(err, 0, batch[i:])
					return
				}
				f.ts.msgsOut.Add(1)
				f.ts.bytesOut.Add(uint64(f.n))
				op.sent.Add(1)
			} else {
				buf = append(buf, f.b...)
				recs = appendRec(recs, f.ts, f.n)
			}
			s.putFrame(f)
			batch[i] = nil
		}
	}
}

// sentRec aggregates consecutive frames of one type in the write buffer.
type sentRec struct {
	ts          *typeState
	msgs, bytes uint64
}

func appendRec(recs []sentRec, ts *typeState, n int) []sentRec {
	if k := len(recs) - 1; k >= 0 && recs[k].ts == ts {
		recs[k].msgs++
		recs[k].bytes += uint64(n)
		return recs
	}
	return append(recs, sentRec{ts: ts, msgs: 1, bytes: uint64(n)})
}

func sentOK(r *sentRec) {
	r.ts.msgsOut.Add(r.msgs)
	r.ts.bytesOut.Add(r.bytes)
}

func failedRec(r *sentRec) { r.ts.sendFailed.Add(r.msgs) }

func countRecs(recs []sentRec, f func(*sentRec)) uint64 {
	var n uint64
	for i := range recs {
		f(&recs[i])
		n += recs[i].msgs
		recs[i].ts = nil
	}
	return n
}

// fail marks the peer's stream dead: queued frames are counted as failed,
// waiting Sends return an error, the stream is reset and the peer is removed
// so the next Send reopens it. extraLost is what the caller already counted.
func (op *outPeer) fail(err error, extraLost uint64) {
	s := op.s
	op.mu.Lock()
	already := op.dead
	var frames []*frame
	if !already {
		op.dead, op.deadErr = true, err
		for i := range op.q {
			for op.q[i].len() > 0 {
				frames = append(frames, op.q[i].pop())
			}
		}
		close(op.done)
	}
	op.mu.Unlock()
	lost := extraLost
	for _, f := range frames {
		f.ts.sendFailed.Add(1)
		s.putFrame(f)
	}
	op.failed.Add(uint64(len(frames)))
	lost += uint64(len(frames))
	if !already {
		_ = op.str.Reset()
		s.pmu.Lock()
		if s.peers[op.id] == op {
			delete(s.peers, op.id)
		}
		s.pmu.Unlock()
		s.failPending(op.id, fmt.Errorf("stream to %s failed: %w", op.id, err))
	}
	if lost == 0 {
		if !already && !errors.Is(err, ErrClosed) {
			s.log.Debug("msg: stream closed, nothing lost", "peer", op.id, "err", err)
		}
		return
	}
	if errors.Is(err, ErrClosed) { // service closing: nobody will Send again
		s.log.Info("msg: closed with queued messages; counted as send_failed", "peer", op.id, "lost", lost)
		return
	}
	s.rlog.Warn("msg: stream failed; queued messages lost", "peer", op.id, "lost", lost, "err", err)
	if !op.app.Load() { // replies only: counted in send_failed, nobody to report to
		return
	}
	s.mu.Lock()
	if !s.closed {
		s.recordFailureLocked(op.id, lost, err)
	}
	s.mu.Unlock()
}

// depths returns the queue lengths by priority.
func (op *outPeer) depths() (d [numPriorities]int) {
	op.mu.Lock()
	defer op.mu.Unlock()
	for i := range op.q {
		d[i] = op.q[i].len()
	}
	return d
}

// frameRing is a FIFO of at most max frames; it grows on demand.
type frameRing struct {
	buf          []*frame
	head, n, max int
}

func (r *frameRing) init(capacity int) {
	r.max = capacity
	r.buf = make([]*frame, min(capacity, 64))
}
func (r *frameRing) len() int { return r.n }
func (r *frameRing) cap() int { return r.max }

func (r *frameRing) push(f *frame) bool {
	if r.n == len(r.buf) {
		if r.n >= r.max {
			return false
		}
		grown := make([]*frame, min(2*len(r.buf), r.max))
		k := copy(grown, r.buf[r.head:])
		copy(grown[k:], r.buf[:r.head])
		r.buf, r.head = grown, 0
	}
	i := r.head + r.n
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	r.buf[i] = f
	r.n++
	return true
}

func (r *frameRing) pop() *frame {
	f := r.buf[r.head]
	r.buf[r.head] = nil
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.n--
	return f
}
