package msg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// maxErrorText bounds the error text sent back to a requester.
const maxErrorText = 4096

// maxHandlerTimeout caps the deadline a requester can impose on a handler.
const maxHandlerTimeout = time.Hour

// RemoteError is returned by Request when the remote peer answered with an
// error: its handler failed, or it has no handler for the type.
type RemoteError struct {
	Peer    peer.ID
	Type    string
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("msg: request %q to %s: remote error: %s", e.Type, e.Peer, e.Message)
}

type pendingKey struct {
	peer peer.ID
	corr uint64
}

type reply struct {
	m   *Message
	err error
}

// Request sends a request of type typ to p and waits for the reply of p's
// handler for typ. Without a ctx deadline, Options.RequestTimeout applies; the
// remaining time is sent along and bounds the remote handler's ctx. A remote
// handler error (or a missing handler: "no handler for type X") is returned as
// a *RemoteError. If the stream to p fails, or p disconnects, the request
// fails at once instead of waiting for the timeout.
func (s *Service) Request(ctx context.Context, p peer.ID, typ string, payload []byte) (*Message, error) {
	start := time.Now()
	m, err := s.request(ctx, p, typ, payload)
	if s.metrics != nil {
		s.metrics.observeRequest(s, typ, start, err)
	}
	return m, err
}

func (s *Service) request(ctx context.Context, p peer.ID, typ string, payload []byte) (*Message, error) {
	start := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.RequestTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	timeoutMs := time.Until(deadline).Milliseconds()
	if timeoutMs <= 0 {
		return nil, kindf(ErrTimeout, "msg: request %q to %s: %w", typ, p, context.DeadlineExceeded)
	}

	key := pendingKey{peer: p, corr: s.corr.Add(1)}
	ch := make(chan reply, 1)
	s.reqMu.Lock()
	s.pending[key] = ch
	s.reqMu.Unlock()
	defer func() {
		s.reqMu.Lock()
		delete(s.pending, key)
		s.reqMu.Unlock()
	}()

	id := s.newID()
	if err := s.send(ctx, p, typ, payload, High, &id, flagRequest, key.corr, uint64(timeoutMs)); err != nil {
		return nil, fmt.Errorf("msg: request %q to %s: %w", typ, p, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			var re *RemoteError
			if errors.As(r.err, &re) {
				return nil, r.err
			}
			return nil, fmt.Errorf("msg: request %q to %s: %w", typ, p, r.err)
		}
		return r.m, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, kindf(ErrTimeout, "msg: request %q to %s: no reply after %s: %w",
				typ, p, time.Since(start).Round(time.Millisecond), ctx.Err())
		}
		return nil, fmt.Errorf("msg: request %q to %s: %w", typ, p, ctx.Err())
	}
}

// deliverReply hands a response to the waiting Request. Responses nobody
// waits for any more (timed out) are counted as late replies.
func (s *Service) deliverReply(from peer.ID, e *envelope, now time.Time) {
	key := pendingKey{peer: from, corr: e.corr}
	s.reqMu.Lock()
	ch := s.pending[key]
	delete(s.pending, key)
	s.reqMu.Unlock()
	if ch == nil {
		s.lateReplies.Add(1)
		s.log.Debug("msg: reply without pending request (late or unknown)", "peer", from, "corr", e.corr)
		return
	}
	typ := string(e.typ)
	if e.flags&flagError != 0 {
		ch <- reply{err: &RemoteError{Peer: from, Type: typ, Message: string(e.payload)}}
		return
	}
	ch <- reply{m: newMessage(typ, from, e, now)}
}

// replyTooLarge fails at once the request an oversized frame from p
// answers, if its header said which: the requester learns the size and the
// limit instead of waiting for its timeout.
func (s *Service) replyTooLarge(p peer.ID, fe *frameTooLargeError) {
	if fe.flags&flagResponse == 0 || fe.corr == 0 {
		return
	}
	var err error
	if fe.payload >= 0 {
		err = kindf(ErrTooLarge, "reply of %d bytes exceeds this node's limit of %d bytes (Options.MaxMessageSize)", fe.payload, s.opts.MaxMessageSize)
	} else {
		err = kindf(ErrTooLarge, "reply frame of %d bytes exceeds this node's limit of %d bytes (Options.MaxMessageSize and the envelope)", fe.size, fe.limit)
	}
	key := pendingKey{peer: p, corr: fe.corr}
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	if ch := s.pending[key]; ch != nil {
		delete(s.pending, key)
		ch <- reply{err: err}
	}
}

// failPending fails the pending requests to p.
func (s *Service) failPending(p peer.ID, err error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	for k, ch := range s.pending {
		if k.peer == p {
			delete(s.pending, k)
			ch <- reply{err: err}
		}
	}
}

func (s *Service) failAllPending(err error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	for k, ch := range s.pending {
		delete(s.pending, k)
		ch <- reply{err: err}
	}
}

// serveRequest answers one request. A request of a type with no handler is
// answered at once, from the reader, without a handler slot; its reply is
// queued only if there is room right now (else dropped and counted), so the
// reader never waits on the requester's send queue (only, at most
// ReplyTimeout, for the reply stream to open on the existing connection).
//
// Otherwise the handler runs in its own goroutine once it has a slot of the
// requesting peer (MaxHandlersPerPeer) and one of the service
// (MaxConcurrentHandlers); the reader waits for them here, which applies
// backpressure to that peer and, when the service's slots are all taken,
// to everyone. The goroutine sends the reply, waiting at most ReplyTimeout
// for queue room, and then frees both slots. Replies are never sent from
// the reader with waiting, so two peers' readers cannot deadlock on each
// other's send queues.
//
// A payload that came in a frame buffer of its own (over 64 KiB) is held by
// the handler, so it also needs room in the peer's and the service's handler
// payload budgets (4 and 32 maximal frames; the reader waits for it, as for
// a slot), and the frame's reservation in the resource manager is given back
// once the handler has it. Leaving the reservation on the stream would let
// the handlers' payloads use up the memory the peer's next frame needs (an
// honest peer's 5th concurrent large request had its stream reset), and the
// resource manager forgets a stream's reservations when it ends, so a peer
// resetting its streams could keep MaxHandlersPerPeer payloads unaccounted.
// The budgets are msg's own and survive the streams.
func (s *Service) serveRequest(from peer.ID, ip *inPeer, e *envelope, ts *typeState, now time.Time, fr *frameReader) {
	typ := string(e.typ)
	var h Handler
	if ts != nil {
		if hp := ts.handler.Load(); hp != nil {
			h = *hp
		}
	}
	if h == nil {
		counted := ts
		if counted == nil {
			counted = s.other
		}
		counted.unhandled.Add(1)
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.ReplyTimeout)
		s.sendReply(ctx, from, typ, e.corr, nil, fmt.Errorf(noHandlerText+"%q", typ), false)
		cancel()
		return
	}
	if err := ip.handlers.Acquire(s.ctx, 1); err != nil {
		return // closing
	}
	if err := s.handlers.Acquire(s.ctx, 1); err != nil {
		ip.handlers.Release(1)
		return // closing
	}
	timeout := time.Duration(min(e.timeout, uint64(maxHandlerTimeout/time.Millisecond))) * time.Millisecond
	if timeout == 0 {
		timeout = s.opts.RequestTimeout
	}
	corr := e.corr
	held := heldBytes(e, fr)
	if held > 0 {
		if err := ip.mem.Acquire(s.ctx, held); err != nil {
			s.handlers.Release(1)
			ip.handlers.Release(1)
			return // closing
		}
		if err := s.handlerMem.Acquire(s.ctx, held); err != nil {
			ip.mem.Release(held)
			s.handlers.Release(1)
			ip.handlers.Release(1)
			return // closing
		}
		s.handlerBytes.Add(held)
	}
	m := newMessage(ts.name, from, e, now)
	s.mu.Lock()
	ip.refs++   // the handler keeps the peer's slots alive
	s.wg.Add(1) // the reader holds a count, so Close cannot be waiting on zero
	s.mu.Unlock()
	go func() {
		defer func() {
			if held > 0 {
				s.handlerBytes.Add(-held)
				s.handlerMem.Release(held)
				ip.mem.Release(held)
			}
			s.handlers.Release(1)
			ip.handlers.Release(1)
			s.mu.Lock()
			s.putInPeerLocked(from, ip)
			s.mu.Unlock()
			s.wg.Done()
		}()
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		out, err := s.runHandler(ctx, h, m)
		// A reply gets its own short time: the handler's may be used up, and
		// a requester that does not read must not hold the slots.
		rctx, rcancel := context.WithTimeout(s.ctx, s.opts.ReplyTimeout)
		defer rcancel()
		s.sendReply(rctx, from, typ, corr, out, err, true)
	}()
}

// heldBytes is what a request's handler holds of the frame e came in, for
// the handler payload budgets: a frame buffer of its own, which the payload
// keeps or is copied from; nothing for a frame that fit the reused buffer
// (at most 64 KiB per handler slot).
func heldBytes(e *envelope, fr *frameReader) int64 {
	switch {
	case fr.reserved == 0:
		return 0
	case e.owned:
		return int64(fr.reserved)
	default:
		return int64(len(e.payload))
	}
}

func (s *Service) runHandler(ctx context.Context, h Handler, m *Message) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.rlog.Log(slog.LevelError, "msg: request handler panicked", "type", m.Type, "peer", m.From, "panic", r, "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("handler for type %q panicked", m.Type)
		}
	}()
	return h(ctx, m)
}

// sendReply queues a reply. With wait it waits for queue room until ctx
// ends; without, it drops the reply if the queue is full. ctx also bounds
// opening the stream. A reply not queued is counted in FailedReplies.
func (s *Service) sendReply(ctx context.Context, to peer.ID, typ string, corr uint64, out []byte, herr error, wait bool) {
	flags := uint64(flagResponse)
	if herr == nil && len(out) > s.opts.MaxMessageSize {
		herr = fmt.Errorf(replyTooLarge+"%d bytes exceeds the responder's limit of %d bytes (%v)", len(out), s.opts.MaxMessageSize, ErrTooLarge)
	}
	if herr != nil {
		flags |= flagError
		text := herr.Error()
		// An error must always fit, or the requester would only learn of
		// it from its own timeout (a node may set a tiny MaxMessageSize).
		if limit := min(maxErrorText, s.opts.MaxMessageSize); len(text) > limit {
			text = text[:limit]
		}
		out = []byte(text)
	}
	id := s.newID()
	if err := s.sendFrame(ctx, to, typ, out, High, &id, flags, corr, 0, wait); err != nil {
		s.droppedReplies.Add(1)
		s.rlog.Warn("msg: reply not sent", "peer", to, "type", typ, "err", err)
	}
}
