package msg

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/warren-p2p/warren/internal/testutil"
)

// Attacks by a remote peer speaking the msg wire protocol directly, without
// a Service of its own.

func newMocknet(t *testing.T) mocknet.Mocknet {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	return mn
}

// mockPeer adds a host to mn, linked and connected to every host in to.
func mockPeer(t *testing.T, mn mocknet.Mocknet, to ...host.Host) host.Host {
	t.Helper()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range to {
		if _, err := mn.LinkPeers(h.ID(), o.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(h.ID(), o.ID()); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// sink makes h accept msg streams of proto and never read them: the
// replies of whoever sends to h back up. The streams are reset at cleanup.
func sink(t *testing.T, h host.Host, s *Service) {
	t.Helper()
	var mu sync.Mutex
	var strs []network.Stream
	h.SetStreamHandler(s.Protocol(), func(str network.Stream) {
		mu.Lock()
		strs = append(strs, str)
		mu.Unlock()
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, str := range strs {
			_ = str.Reset()
		}
	})
}

// rawStreams opens n msg streams from h to s's host, reset at cleanup.
func rawStreams(t *testing.T, h host.Host, s *Service, n int) []network.Stream {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	strs := make([]network.Stream, n)
	for i := range strs {
		str, err := h.NewStream(ctx, s.h.ID(), s.Protocol())
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		strs[i] = str
		t.Cleanup(func() { _ = str.Reset() })
	}
	return strs
}

func requestFrames(typ string, n int, corr0 uint64) []byte {
	var b []byte
	id := ID{9}
	for i := range n {
		b = appendFrame(b, typ, &id, []byte("x"), 0, flagRequest, corr0+uint64(i), 10_000)
	}
	return b
}

// writeAll writes b on every stream, each from its own goroutine, until done
// (or the stream is reset: writes block once the service stops reading).
// It waits for the writers at cleanup.
func writeAll(t *testing.T, strs []network.Stream, b []byte) {
	var wg sync.WaitGroup
	for _, str := range strs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = str.Write(b)
		}()
	}
	t.Cleanup(func() {
		for _, str := range strs {
			_ = str.Reset()
		}
		wg.Wait()
	})
}

func p99(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[(len(d)*99+99)/100-1]
}

// Finding 1: one peer floods requests on 200 streams, to a type without a
// handler and to a handled one, and never reads the replies. It holds at
// most MaxHandlersPerPeer handler slots, its "no handler" requests take none,
// and another peer's requests are answered at once.
func TestRequestsFairPerPeer(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	d := newService(t, hd, Options{Network: "mock", SendQueue: 64})
	var mu sync.Mutex
	running := map[peer.ID]int{}
	maxRunning := map[peer.ID]int{}
	var attacker atomic.Value // peer.ID
	if _, err := d.Handle("echo", func(ctx context.Context, m *Message) ([]byte, error) {
		mu.Lock()
		running[m.From]++
		maxRunning[m.From] = max(maxRunning[m.From], running[m.From])
		mu.Unlock()
		if m.From == attacker.Load() {
			time.Sleep(20 * time.Millisecond) // long enough to see how many run at once
		}
		defer func() {
			mu.Lock()
			running[m.From]--
			mu.Unlock()
		}()
		return m.Payload, nil
	}); err != nil {
		t.Fatal(err)
	}

	ha := mockPeer(t, mn, hd) // the attacker
	attacker.Store(ha.ID())
	sink(t, ha, d)
	strs := rawStreams(t, ha, d, 200)
	frames := append(requestFrames("nohandler", 50, 1), requestFrames("echo", 50, 1000)...)
	writeAll(t, strs, frames)
	// The attacker's replies back up: its handlers wait on its full queue.
	testutil.Eventually(t, 10*time.Second, "attacker's send queue full", func() bool {
		for _, p := range d.Stats().Peers {
			if p.Peer == ha.ID() && p.Queued.High == 64 {
				return true
			}
		}
		return false
	})

	hv := mockPeer(t, mn, hd) // the victim
	v := newService(t, hv, Options{Network: "mock"})
	ctx := ctxT(t, 60*time.Second)
	// One request first opens the streams between victim and service.
	if _, err := v.Request(ctx, hd.ID(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	lat := make([]time.Duration, 0, 50)
	for i := range 50 {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := v.Request(rctx, hd.ID(), "echo", []byte{byte(i)})
		cancel()
		if err != nil {
			t.Fatalf("victim's request %d: %v", i, err)
		}
		if len(r.Payload) != 1 || r.Payload[0] != byte(i) {
			t.Fatalf("victim's request %d: got %v", i, r.Payload)
		}
		lat = append(lat, time.Since(start))
	}
	if q := p99(lat); q > 200*time.Millisecond {
		t.Fatalf("victim's p99 request latency %s under attack, want < 200ms", q)
	}
	mu.Lock()
	got := maxRunning[ha.ID()]
	mu.Unlock()
	if got > DefaultMaxHandlersPerPeer {
		t.Fatalf("attacker ran %d handlers at once, want at most %d", got, DefaultMaxHandlersPerPeer)
	}
	st := d.Stats()
	if st.FailedReplies == 0 {
		t.Fatal("no reply counted as failed although the attacker never reads")
	}
	if st.Types[OtherType].Unhandled == 0 {
		t.Fatal("no-handler requests not counted")
	}
	t.Logf("victim p99 %s; attacker max handlers %d; failed replies %d", p99(lat), got, st.FailedReplies)
	// Close ends every reader, handler and reply still waiting on the attacker.
	_ = d.Close()
	_ = v.Close()
	// A stream the host negotiated just before Close may still enter the
	// handler, which then returns at once: allow a moment, as goleak does.
	deadline := time.Now().Add(2 * time.Second)
	for {
		stacks, running := serviceGoroutines()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of the services still run 2 s after Close:\n%s", stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serviceGoroutines reports whether a goroutine runs code of this package's
// Service (readers, writers, handlers), with all stacks.
func serviceGoroutines() (string, bool) {
	buf := make([]byte, 1<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	return all, strings.Contains(all, "msg.(*Service)") || strings.Contains(all, "msg.(*outPeer)")
}

// A reply to a requester that does not read waits at most ReplyTimeout,
// then frees the handler slot.
func TestReplyWaitBounded(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	d := newService(t, hd, Options{Network: "mock", SendQueue: 1, MaxHandlersPerPeer: 1, ReplyTimeout: 100 * time.Millisecond})
	var calls atomic.Int64
	if _, err := d.Handle("echo", func(ctx context.Context, m *Message) ([]byte, error) {
		calls.Add(1)
		return make([]byte, 1024), nil
	}); err != nil {
		t.Fatal(err)
	}
	ha := mockPeer(t, mn, hd)
	sink(t, ha, d)
	writeAll(t, rawStreams(t, ha, d, 1), requestFrames("echo", 30, 1))
	// One slot, replies stuck: with a 100 ms bound, 30 requests take ~3 s;
	// with the request's own 10 s they would take minutes.
	testutil.Eventually(t, 15*time.Second, "all 30 handled", func() bool { return calls.Load() == 30 })
	testutil.Eventually(t, 5*time.Second, "replies dropped", func() bool { return d.Stats().FailedReplies >= 25 })
}

// Finding 2: frames declared at the maximum size whose bodies do not arrive
// cost what arrived (at most twice), not what was declared.
func TestDeclaredFrameSizeNotAllocated(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	d := newService(t, hd, Options{Network: "mock"}) // 4 MiB messages
	ha := mockPeer(t, mn, hd)
	const streams, sent = 50, 100 << 10
	strs := rawStreams(t, ha, d, streams)
	partial := append(protowire.AppendVarint(nil, uint64(d.maxBody)), make([]byte, sent)...)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	writeAll(t, strs, partial)
	// 100 KiB arrived: the first 64 KiB filled the stream's reused buffer,
	// the rest moved to an own buffer of 128 KiB.
	testutil.Eventually(t, 10*time.Second, "partial frames buffered", func() bool {
		return d.Stats().InboundFrameBytes == streams*128<<10
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	// Each stream: 64 KiB bufio + 64 KiB reused + 128 KiB own buffer.
	if limit := int64(streams*256<<10 + 16<<20); growth > limit {
		t.Fatalf("heap grew %d MiB for %d streams that declared %d MiB each; want < %d MiB",
			growth>>20, streams, d.maxBody>>20, limit>>20)
	}
	for _, str := range strs {
		_ = str.Reset()
	}
	testutil.Eventually(t, 10*time.Second, "reservations released", func() bool { return d.Stats().InboundFrameBytes == 0 })
	t.Logf("heap growth %d KiB for %d streams", growth>>10, streams)
}

// A frame whose buffer would take a peer over the msg service's memory
// limit in the resource manager resets its stream; so does a stream beyond
// the per-peer stream limit. Loopback hosts with a real resource manager.
func TestResourceManagerLimits(t *testing.T) {
	const peerMem = 512 << 10
	limits := rcmgr.PartialLimitConfig{
		Stream:      rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(peerMem)},
		ServicePeer: map[string]rcmgr.ResourceLimits{ServiceName: {StreamsInbound: 8, StreamsOutbound: 8, Memory: rcmgr.LimitVal64(peerMem)}},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.DefaultLimits.AutoScale())))
	if err != nil {
		t.Fatal(err)
	}
	hd, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(), libp2p.ResourceManager(rm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hd.Close() })
	ha := newHost(t)
	connect(t, ha, hd)
	d := newService(t, hd, Options{})

	// Stream 1: 300 KiB of a 4 MiB frame: its buffer grows to 512 KiB,
	// all the peer may hold.
	strs := rawStreams(t, ha, d, 2)
	big := protowire.AppendVarint(nil, uint64(d.maxBody))
	writeAll(t, strs[:1], append(slices.Clip(big), make([]byte, 300<<10)...))
	testutil.Eventually(t, 10*time.Second, "first frame buffered", func() bool { return d.Stats().InboundFrameBytes == peerMem })
	// Stream 2: 100 KiB more needs another 128 KiB: refused, reset.
	writeAll(t, strs[1:], append(slices.Clip(big), make([]byte, 100<<10)...))
	testutil.Eventually(t, 10*time.Second, "memory refusal counted", func() bool { return d.Stats().RefusedMemory == 1 })
	assertReset(t, strs[1])
	if got := d.Stats().InboundFrameBytes; got != peerMem {
		t.Fatalf("reserved %d, want %d (stream 1 only)", got, peerMem)
	}

	// Streams: 2 open (one reset, being released); up to 8 join, more are reset.
	testutil.Eventually(t, 5*time.Second, "reset stream released", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.inbound) == 1
	})
	more := rawStreams(t, ha, d, 8)
	for _, str := range more { // libp2p negotiates lazily: make the streams reach d
		if _, err := str.Write([]byte{0x80}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "stream refusal counted", func() bool { return d.Stats().RefusedStreams == 1 })
	// A stream joins the service's scope before the service records it, so
	// the ninth may be refused while one of the eight is not yet recorded.
	served := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.inbound)
	}
	testutil.Eventually(t, 5*time.Second, "the limit of 8 inbound streams served", func() bool { return served() == 8 })
	if n, r := served(), d.Stats().RefusedStreams; n != 8 || r != 1 {
		t.Fatalf("%d inbound streams served and %d refused, want the limit of 8 and 1", n, r)
	}
}

// assertReset checks that the service reset str. Reading cannot tell (the
// service closed its side for writing at once, so a read sees EOF first),
// but writing to a reset stream fails.
func assertReset(t *testing.T, str network.Stream) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = str.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := str.Write([]byte{0}); err != nil {
			var te interface{ Timeout() bool }
			if errors.As(err, &te) && te.Timeout() {
				t.Fatalf("stream not reset: write blocked")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("stream not reset: writes still succeed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Finding 3: a subscription is bounded in bytes too, under every policy.
func TestSubscriptionByteBound(t *testing.T) {
	s := newService(t, mockPeer(t, newMocknet(t)), Options{Network: "mock", SubscribeMaxBytes: 1 << 20})
	msgOf := func(i int) *Message { return &Message{ID: ID{byte(i)}, From: "p", Payload: make([]byte, 256<<10)} }

	def, err := s.Subscribe("d", SubscribeOptions{Policy: DropNewest})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		def.deliver(msgOf(i))
	}
	if n, b := def.queuedBoth(); n != 4 || b != 1<<20 || def.Dropped() != 6 {
		t.Fatalf("drop-newest: %d queued (%d bytes), %d dropped; want 4 (1 MiB), 6", n, b, def.Dropped())
	}
	if st := s.Stats(); st.Types["d"].Dropped != 6 || st.Subscriptions[0].MaxBytes != 1<<20 || st.Subscriptions[0].QueuedBytes != 1<<20 {
		t.Fatalf("stats: %+v %+v", st.Types["d"], st.Subscriptions[0])
	}

	old, err := s.Subscribe("o", SubscribeOptions{Policy: DropOldest, MaxBytes: 600 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		old.deliver(msgOf(i))
	}
	ctx := ctxT(t, 5*time.Second)
	if n, _ := old.queuedBoth(); n != 2 || old.Dropped() != 8 {
		t.Fatalf("drop-oldest: %d queued, %d dropped; want 2, 8", n, old.Dropped())
	}
	for _, want := range []byte{8, 9} {
		if m, err := old.Next(ctx); err != nil || m.ID[0] != want {
			t.Fatalf("drop-oldest kept %v (%v), want message %d", m, err, want)
		}
	}
	// A message over the bound still fits an empty queue, alone; a small
	// one after it evicts it.
	old.deliver(&Message{ID: ID{20}, From: "p", Payload: make([]byte, 1<<20)})
	old.deliver(&Message{ID: ID{21}, From: "p", Payload: make([]byte, 1)})
	if m, err := old.Next(ctx); err != nil || m.ID[0] != 21 {
		t.Fatalf("got %v (%v), want message 21", m, err)
	}

	blk, err := s.Subscribe("b", SubscribeOptions{Policy: Block, MaxBytes: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	blk.deliver(msgOf(0))
	blk.deliver(msgOf(1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		blk.deliver(msgOf(2)) // waits for room
	}()
	testutil.Eventually(t, 5*time.Second, "producer blocked", func() bool {
		blk.mu.Lock()
		defer blk.mu.Unlock()
		return blk.blocked == 1
	})
	if _, err := blk.Next(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if n, b := blk.queuedBoth(); n != 2 || b != 512<<10 || blk.Dropped() != 0 {
		t.Fatalf("block: %d queued (%d bytes), %d dropped", n, b, blk.Dropped())
	}
}

// Finding 4: per-peer state of peers that left goes away, whatever they
// did: requests answered and unanswered, replies stuck behind a requester
// that does not read, messages to us and from us.
func TestIdentityChurnLeavesNoState(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	d := newService(t, hd, Options{Network: "mock", SendQueue: 4})
	if _, err := d.Handle("echo", func(ctx context.Context, m *Message) ([]byte, error) { return m.Payload, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Subscribe("note", SubscribeOptions{Policy: DropNewest}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 60*time.Second)
	const identities = 40
	for i := range identities {
		h := mockPeer(t, mn, hd)
		if i%2 == 0 {
			// A well-behaved peer with a Service of its own.
			c, err := New(context.Background(), h, Options{Network: "mock"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Request(ctx, hd.ID(), "echo", []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if err := c.Send(ctx, hd.ID(), "note", []byte("hi"), SendOptions{}); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
		} else {
			// A raw peer whose replies back up, then vanishes.
			sink(t, h, d)
			strs := rawStreams(t, h, d, 2)
			writeAll(t, strs, append(requestFrames("echo", 20, 1), requestFrames("nohandler", 20, 100)...))
			testutil.Eventually(t, 10*time.Second, "replies backed up", func() bool {
				for _, p := range d.Stats().Peers {
					if p.Peer == h.ID() && p.Queued.High > 0 {
						return true
					}
				}
				return false
			})
		}
		if err := mn.DisconnectPeers(h.ID(), hd.ID()); err != nil {
			t.Fatal(err)
		}
		_ = h.Close()
	}
	left := func() string {
		d.mu.Lock()
		s := fmt.Sprintf("inPeers %d, inbound %d, failures %d", len(d.inPeers), len(d.inbound), len(d.failures))
		d.mu.Unlock()
		d.pmu.RLock()
		s += fmt.Sprintf(", peers %d", len(d.peers))
		d.pmu.RUnlock()
		d.reqMu.Lock()
		s += fmt.Sprintf(", pending %d", len(d.pending))
		d.reqMu.Unlock()
		return s
	}
	const none = "inPeers 0, inbound 0, failures 0, peers 0, pending 0"
	deadline := time.Now().Add(30 * time.Second)
	for left() != none {
		if time.Now().After(deadline) {
			d.pmu.RLock()
			for p, op := range d.peers {
				t.Logf("peer %s: conn %v, connectedness %v, app %v, queued %v", p, op.str.Conn().IsClosed(), hd.Network().Connectedness(p), op.app.Load(), op.depths())
			}
			d.pmu.RUnlock()
			t.Fatalf("per-peer state left after %d identities came and went: %s", identities, left())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := d.Stats(); len(st.Peers) != 0 {
		t.Fatalf("stats still list %d peers", len(st.Peers))
	}
}

// Unreported losses of the application's own messages are kept for its next
// Send, but at most maxFailureRecords of them.
func TestFailureRecordsBounded(t *testing.T) {
	s := newService(t, mockPeer(t, newMocknet(t)), Options{Network: "mock"})
	s.mu.Lock()
	for i := range maxFailureRecords + 100 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.recordFailureLocked(peer.ID(b[:]), 1, errTest)
		_ = i
	}
	n := len(s.failures)
	s.mu.Unlock()
	if n != maxFailureRecords || int(s.nFailures.Load()) != n {
		t.Fatalf("%d records (counter %d), want %d", n, s.nFailures.Load(), maxFailureRecords)
	}
}

var errTest = errString("test")

type errString string

func (e errString) Error() string { return string(e) }

// countHandler counts log records by level.
type countHandler struct {
	warn, err atomic.Int64
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelError:
		h.err.Add(1)
	case r.Level >= slog.LevelWarn:
		h.warn.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// Finding 5: a flood of malformed and oversized frames, and of replies that
// cannot be sent, logs a bounded number of lines.
func TestRemoteWarningsRateLimited(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	logs := &countHandler{}
	d := newService(t, hd, Options{Network: "mock", Logger: slog.New(logs), SendQueue: 1})
	ha := mockPeer(t, mn, hd)
	sink(t, ha, d)

	var garbage []byte
	for range 1000 {
		garbage = append(garbage, 3, 0xff, 0xff, 0xff) // a 3-byte frame that is no envelope
	}
	writeAll(t, rawStreams(t, ha, d, 1), garbage)
	testutil.Eventually(t, 10*time.Second, "1000 bad frames", func() bool { return d.Stats().BadFrames == 1000 })
	for _, str := range rawStreams(t, ha, d, 50) {
		if _, err := str.Write(protowire.AppendVarint(nil, 1<<40)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "50 oversized frames", func() bool { return d.Stats().BadFrames == 1050 })
	if n := logs.warn.Load(); n > 2 {
		t.Fatalf("%d warnings logged for 1050 bad frames, want at most 2", n)
	}
	writeAll(t, rawStreams(t, ha, d, 1), requestFrames("nohandler", 500, 1))
	testutil.Eventually(t, 10*time.Second, "replies dropped", func() bool { return d.Stats().FailedReplies > 100 })
	// One line per kind: malformed, oversized, reply not sent.
	if n := logs.warn.Load(); n > 3 {
		t.Fatalf("%d warnings logged for a flood of bad input, want at most 3", n)
	}
}

// A large frame stays accounted until its message is queued (a Block
// subscriber without room makes the reader wait, holding it) or, for a
// request, until its handler is done: in the resource manager while it is
// read, in the handler payload budget while the handler has it.
func TestFrameMemoryHeldUntilHandedOff(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	d := newService(t, hd, Options{Network: "mock"})
	c := newService(t, mockPeer(t, mn, hd), Options{Network: "mock"})
	sub, err := d.Subscribe("big", SubscribeOptions{Buffer: 1, Policy: Block})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	if _, err := d.Handle("hold", func(ctx context.Context, m *Message) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Second)
	payload := make([]byte, 200<<10) // read into an own buffer of the frame's size
	held := func() bool { n := d.Stats().InboundFrameBytes; return n > 200<<10 && n < 201<<10 }
	for range 2 {
		if err := c.Send(ctx, hd.ID(), "big", payload, SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first is queued, the second waits for room: accounted.
	testutil.Eventually(t, 10*time.Second, "second frame held", held)
	for range 2 {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "released once queued", func() bool { return d.Stats().InboundFrameBytes == 0 })

	done := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, hd.ID(), "hold", payload)
		done <- err
	}()
	testutil.Eventually(t, 10*time.Second, "request held by its handler", func() bool {
		st := d.Stats()
		return st.HandlerPayloadBytes > 200<<10 && st.HandlerPayloadBytes < 201<<10 && st.InboundFrameBytes == 0
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "released by the handler", func() bool {
		st := d.Stats()
		return st.InboundFrameBytes == 0 && st.HandlerPayloadBytes == 0
	})
}

// rmHost is a loopback host whose resource manager applies the msg
// service's limits of opts, as the node does (see ResourceLimits).
func rmHost(t *testing.T, opts Options) host.Host {
	t.Helper()
	l, err := ResourceLimits(opts)
	if err != nil {
		t.Fatal(err)
	}
	limits := rcmgr.PartialLimitConfig{
		Stream:  rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(l.PeerMemory)},
		Service: map[string]rcmgr.ResourceLimits{ServiceName: {Memory: rcmgr.LimitVal64(l.Memory)}},
		ServicePeer: map[string]rcmgr.ResourceLimits{ServiceName: {
			StreamsInbound: rcmgr.LimitVal(l.PeerStreamsInbound), StreamsOutbound: rcmgr.LimitVal(l.PeerStreamsOutbound),
			Memory: rcmgr.LimitVal64(l.PeerMemory),
		}},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.DefaultLimits.AutoScale())))
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(), libp2p.ResourceManager(rm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// Eight identities, four streams each, withhold the last byte of a maximal
// frame: that is all the frame memory the resource manager gives the
// service, and a ninth peer's large frame is refused. msg streams have no
// read deadline, so without a deadline of its own for large frames this
// lasted for as long as the attackers stayed connected. Past the frame
// deadline their streams are reset (counted), the memory comes back, and an
// honest peer's maximal message goes through.
func TestWithheldFramesExpire(t *testing.T) {
	const identities, perPeer = 8, 4 // 32 maximal frames: the service's memory
	opts := Options{MaxMessageSize: 256 << 10, FrameGrace: 5 * time.Second, FrameMinRate: 1 << 20}
	hd := rmHost(t, opts)
	d := newService(t, hd, opts)
	sub, err := d.Subscribe("big", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	withheld := append(protowire.AppendVarint(nil, uint64(d.maxBody)), make([]byte, d.maxBody-1)...)
	var strs []network.Stream
	for range identities {
		h := newHost(t)
		connect(t, h, hd)
		strs = append(strs, rawStreams(t, h, d, perPeer)...)
	}
	writeAll(t, strs, withheld)
	full := int64(identities * perPeer * d.maxBody)
	testutil.Eventually(t, 10*time.Second, "service frame memory full", func() bool { return d.Stats().InboundFrameBytes == full })

	// Meanwhile an honest peer's large frame finds no memory.
	hc := newHost(t)
	connect(t, hc, hd)
	probe := rawStreams(t, hc, d, 1)
	writeAll(t, probe, withheld[:200<<10])
	testutil.Eventually(t, 10*time.Second, "honest frame refused", func() bool { return d.Stats().RefusedMemory == 1 })

	testutil.Eventually(t, 20*time.Second, "withheld frames expired", func() bool {
		st := d.Stats()
		return st.SlowFrames == identities*perPeer && st.InboundFrameBytes == 0
	})
	for _, str := range strs {
		assertReset(t, str)
	}
	c := newService(t, hc, opts)
	ctx := ctxT(t, 10*time.Second)
	payload := make([]byte, opts.MaxMessageSize)
	if err := c.Send(ctx, hd.ID(), "big", payload, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil || len(m.Payload) != len(payload) || m.From != hc.ID() {
		t.Fatalf("honest maximal message: %v, %v", m, err)
	}
	if st := d.Stats(); st.SlowFrames != identities*perPeer || st.RefusedMemory != 1 {
		t.Fatalf("slow_frames=%d refused_memory=%d, want %d and 1", st.SlowFrames, st.RefusedMemory, identities*perPeer)
	}
}

// The payloads held by a peer's running handlers are counted in a budget of
// the service's own, 4 maximal frames per peer, that outlives the peer's
// streams: a peer that resets its stream and sends more large requests on a
// new one waits for its handlers instead of holding MaxHandlersPerPeer
// payloads, of which the resource manager forgot those of the reset stream.
func TestHandlerPayloadBudgetSurvivesReset(t *testing.T) {
	mn := newMocknet(t)
	hd := mockPeer(t, mn)
	opts := Options{Network: "mock", MaxMessageSize: 256 << 10}
	d := newService(t, hd, opts)
	ha := mockPeer(t, mn, hd)
	sink(t, ha, d)
	var running atomic.Int32
	release := make(chan struct{})
	if _, err := d.Handle("hold", func(ctx context.Context, m *Message) ([]byte, error) {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, opts.MaxMessageSize)
	requests := func(corr0 uint64) []byte {
		var b []byte
		for i := range uint64(peerMemoryFrames) {
			b = appendFrame(b, "hold", &ID{7}, payload, 0, flagRequest, corr0+i, 10_000)
		}
		return b
	}
	_, n := protowire.ConsumeVarint(requests(1))
	frame := int64(len(requests(1))/peerMemoryFrames - n) // one frame body: what its handler holds

	first := rawStreams(t, ha, d, 1)
	writeAll(t, first, requests(1))
	testutil.Eventually(t, 10*time.Second, "4 handlers running", func() bool { return running.Load() == peerMemoryFrames })
	_ = first[0].Reset()
	testutil.Eventually(t, 10*time.Second, "reset stream gone", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.inbound) == 0
	})
	writeAll(t, rawStreams(t, ha, d, 1), requests(100))
	// The new stream's first request is read (its frame reserved) and
	// waits for room in the peer's budget, which the reset did not free.
	testutil.Eventually(t, 10*time.Second, "5th request waiting for the budget", func() bool {
		st := d.Stats()
		return st.InboundFrameBytes == frame && st.HandlerPayloadBytes == peerMemoryFrames*frame
	})
	if n := running.Load(); n != peerMemoryFrames {
		t.Fatalf("%d handlers running, want %d: the budget did not hold across the reset", n, peerMemoryFrames)
	}
	close(release)
	testutil.Eventually(t, 10*time.Second, "all 8 handled", func() bool { return running.Load() == 2*peerMemoryFrames })
	testutil.Eventually(t, 10*time.Second, "budgets empty", func() bool {
		st := d.Stats()
		return st.InboundFrameBytes == 0 && st.HandlerPayloadBytes == 0
	})
}
