package msg

import (
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// readBufSize is the bufio size of a stream reader.
const readBufSize = 64 << 10

// handleStream serves one inbound stream: it reads frames until the stream
// ends and dispatches each.
//
// The stream joins the resource manager's service ServiceName first, so
// libp2p bounds the msg streams of each peer and of all peers together
// (see ResourceLimits); a stream over those limits is reset.
func (s *Service) handleStream(str network.Stream) {
	remote := str.Conn().RemotePeer()
	if err := str.Scope().SetService(ServiceName); err != nil {
		s.refusedStreams.Add(1)
		s.rlog.Warn("msg: inbound stream refused by the resource manager", "peer", remote, "err", err)
		_ = str.Reset()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = str.Reset()
		return
	}
	s.wg.Add(1)
	s.inbound[str] = struct{}{}
	ip := s.inPeerLocked(remote)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inbound, str)
		s.putInPeerLocked(remote, ip)
		s.mu.Unlock()
		s.wg.Done()
	}()
	_ = str.CloseWrite() // we only read on this stream
	s.readLoop(str, remote, ip)
}

func (s *Service) readLoop(str network.Stream, remote peer.ID, ip *inPeer) {
	fr := newFrameReader(str, s.maxBody, readBufSize)
	// Frame buffers beyond the reused base are reserved on the stream's
	// scope, so they count against the service's per-peer and total memory.
	scope := str.Scope()
	fr.reserve = func(n int) error { return scope.ReserveMemory(n, network.ReservationPriorityAlways) }
	fr.unreserve = scope.ReleaseMemory
	fr.held = &s.inboundBytes
	// Reserved memory must not be held forever by a frame that never
	// completes: past its deadline, the stream is reset (which ends the
	// read). Not SetReadDeadline: yamux can lose a window update with it.
	fr.deadline = s.opts.frameDeadline
	fr.expire = func() { _ = str.Reset() }
	defer fr.release()
	var e envelope
	var slab msgSlab
	now := time.Now()
	for {
		refill := !fr.buffered()
		body, err := fr.next()
		if err != nil {
			switch {
			case errors.Is(err, errFrameTooLarge):
				s.badFrames.Add(1)
				s.rlog.Warn("msg: oversized frame; resetting stream", "peer", remote, "err", err)
				_ = str.Reset()
				var fe *frameTooLargeError
				if errors.As(err, &fe) {
					s.replyTooLarge(remote, fe)
				}
			case errors.Is(err, errFrameMemory):
				s.refusedMemory.Add(1)
				s.rlog.Warn("msg: no memory for frame under the resource manager's limits; resetting stream", "peer", remote, "err", err)
				_ = str.Reset()
			case errors.Is(err, errSlowFrame): // the timer reset the stream
				s.slowFrames.Add(1)
				s.rlog.Warn("msg: frame did not arrive in time; stream reset", "peer", remote, "err", err)
				_ = str.Reset()
			case errors.Is(err, io.EOF) || s.ctx.Err() != nil:
				_ = str.Close()
			default:
				s.log.Debug("msg: stream read ended", "peer", remote, "err", err)
				_ = str.Reset()
			}
			return
		}
		if refill {
			now = time.Now()
		}
		if err := decodeEnvelope(body, &e); err != nil {
			// Framing is intact, so skip just this frame.
			s.badFrames.Add(1)
			s.rlog.Warn("msg: malformed message skipped", "peer", remote, "err", err)
			continue
		}
		// A frame with a buffer of its own gives that buffer to the Message
		// it becomes (no copy), if the payload is most of the frame: a small
		// payload must not keep a big buffer alive. The reservation lasts
		// until the message is queued in its subscriptions (with Block, the
		// reader may wait for room meanwhile), whose byte bounds account it
		// from then on, or until its request's handler has it (in the
		// handler payload budgets from then on).
		e.owned = fr.ownBuffer() && 2*len(e.payload) >= len(body)
		s.dispatch(remote, ip, &e, now, &slab, fr)
		fr.release()
	}
}

// dispatch routes one decoded envelope.
// slab, owned by the stream's reader, supplies the Messages it delivers.
// fr is the reader the frame came from, whose reservation a request's
// handler takes over.
func (s *Service) dispatch(from peer.ID, ip *inPeer, e *envelope, now time.Time, slab *msgSlab, fr *frameReader) {
	ts := s.knownTypeBytes(e.typ)
	counted := ts
	if counted == nil {
		counted = s.other
	}
	counted.msgsIn.Add(1)
	counted.bytesIn.Add(uint64(len(e.payload)))

	switch {
	case e.flags&flagResponse != 0:
		s.deliverReply(from, e, now)
		return
	case e.flags&flagRequest != 0:
		s.serveRequest(from, ip, e, ts, now, fr)
		return
	}
	if ts == nil {
		counted.unhandled.Add(1)
		s.log.Debug("msg: message of unknown type", "peer", from, "type", truncate(e.typ))
		return
	}
	subs := ts.subs.Load()
	if subs == nil || len(*subs) == 0 {
		ts.unhandled.Add(1)
		s.log.Debug("msg: message without subscriber", "peer", from, "type", ts.name)
		return
	}
	m := slab.newMessage(ts.name, from, e, now)
	for _, sub := range *subs {
		sub.deliver(m)
	}
}

// newMessage builds a Message; the payload is copied out of the frame buffer
// into its own (pointer-free, so cheap for the GC) allocation, unless the
// frame had a buffer of its own, which the payload then keeps.
func newMessage(typ string, from peer.ID, e *envelope, now time.Time) *Message {
	m := &Message{Type: typ, ID: e.id, From: from, Time: now, Sent: time.Unix(0, e.sent)}
	switch {
	case e.owned:
		m.Payload = e.payload[:len(e.payload):len(e.payload)]
	case len(e.payload) > 0:
		m.Payload = make([]byte, len(e.payload))
		copy(m.Payload, e.payload)
	}
	return m
}

// Slab sizes: a stream reader carves Messages and small payloads out of
// chunks instead of allocating two objects per message, which halves the
// receive path's garbage at millions of messages a second. A Message kept by
// the application keeps its chunks (slabMsgs Messages, slabBytes of
// payload) alive; payloads over slabMaxPayload get their own allocation.
const (
	slabMsgs       = 128
	slabBytes      = 32 << 10
	slabMaxPayload = 2 << 10
)

// msgSlab hands out Messages and payload space from chunks. It belongs to
// one goroutine (a stream's reader).
type msgSlab struct {
	msgs  []Message
	bytes []byte
}

func (sl *msgSlab) newMessage(typ string, from peer.ID, e *envelope, now time.Time) *Message {
	if e.owned || len(e.payload) > slabMaxPayload {
		// A large payload gets a Message of its own: in a chunk it would
		// stay reachable while any Message of the chunk is, and the reader
		// holds its chunk until the last one is handed out, so up to
		// slabMsgs payloads of the largest size after they were read.
		return newMessage(typ, from, e, now)
	}
	if len(sl.msgs) == 0 {
		sl.msgs = make([]Message, slabMsgs)
	}
	m := &sl.msgs[0]
	sl.msgs = sl.msgs[1:]
	*m = Message{Type: typ, ID: e.id, From: from, Time: now, Sent: time.Unix(0, e.sent)}
	if n := len(e.payload); n > 0 {
		if len(sl.bytes) < n {
			sl.bytes = make([]byte, slabBytes)
		}
		// The full slice expression caps the payload, so an append by the
		// application reallocates instead of writing into a neighbour.
		m.Payload = sl.bytes[:n:n]
		copy(m.Payload, e.payload)
		sl.bytes = sl.bytes[n:]
	}
	return m
}
