package msg

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/warren-p2p/warren/internal/testutil"
)

func TestSendRecv(t *testing.T) {
	a, b := pair(t, Options{})
	sub, err := b.Subscribe("chat/text", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	before := time.Now()
	if err := a.Send(ctx, b.h.ID(), "chat/text", []byte("hello"), SendOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "chat/text" || string(m.Payload) != "hello" || m.From != a.h.ID() {
		t.Fatalf("got %+v", m)
	}
	if m.ID.IsZero() || m.Time.Before(before) || m.Sent.Before(before.Add(-time.Second)) {
		t.Fatalf("bad id or times: %+v", m)
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"type":"chat/text"`, `"from":"` + a.h.ID().String() + `"`, `"id":"` + m.ID.String() + `"`, `"payload":"aGVsbG8="`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON %s lacks %s", js, k)
		}
	}
	st := a.Stats().Types["chat/text"]
	testutil.Eventually(t, 5*time.Second, "out counters", func() bool {
		st = a.Stats().Types["chat/text"]
		return st.MsgsOut == 1
	})
	if st.BytesOut != 5 {
		t.Fatalf("sender stats %+v", st)
	}
	if in := b.Stats().Types["chat/text"]; in.MsgsIn != 1 || in.BytesIn != 5 || in.Subscribers != 1 {
		t.Fatalf("receiver stats %+v", in)
	}
}

func TestFanOut(t *testing.T) {
	a, b := pair(t, Options{})
	const subsN, msgs = 3, 500
	var subs []*Subscription
	for range subsN {
		sub, err := b.Subscribe("fan", SubscribeOptions{Buffer: msgs})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	ctx := ctxT(t, 20*time.Second)
	for i := range msgs {
		if err := a.Send(ctx, b.h.ID(), "fan", []byte(fmt.Sprint(i)), SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for si, sub := range subs {
		for i := range msgs {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("sub %d msg %d: %v", si, i, err)
			}
			if string(m.Payload) != fmt.Sprint(i) {
				t.Fatalf("sub %d: got %q want %d", si, m.Payload, i)
			}
		}
	}
}

// A Block subscriber loses nothing while a DropNewest subscriber of the same
// type accounts for every message it did not get.
func TestBlockLosslessDropNewestExact(t *testing.T) {
	a, b := pair(t, Options{SendQueue: 256})
	const n = 100_000
	block, err := b.Subscribe("bulk", SubscribeOptions{Buffer: 64, Policy: Block})
	if err != nil {
		t.Fatal(err)
	}
	lossy, err := b.Subscribe("bulk", SubscribeOptions{Buffer: 16, Policy: DropNewest})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 50*time.Second)
	var lossyGot uint64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // slow consumer
		defer wg.Done()
		for i := 0; ; i++ {
			if _, err := lossy.Next(ctx); err != nil {
				return
			}
			lossyGot++
			if i%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	blockErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range n {
			m, err := block.Next(ctx)
			if err != nil {
				blockErr <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if got := binary.BigEndian.Uint64(m.Payload); got != uint64(i) {
				blockErr <- fmt.Errorf("message %d: got sequence %d", i, got)
				return
			}
		}
		blockErr <- nil
	}()
	payload := make([]byte, 8)
	for i := range n {
		binary.BigEndian.PutUint64(payload, uint64(i))
		if err := a.Send(ctx, b.h.ID(), "bulk", payload, SendOptions{}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := <-blockErr; err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "lossy subscription to account for all", func() bool {
		return lossy.Delivered()+lossy.Dropped()+uint64(lossy.queued()) == n
	})
	lossy.Close() // ends the consumer; queued messages count as dropped
	wg.Wait()
	if block.Dropped() != 0 || block.Delivered() != n {
		t.Fatalf("block: delivered %d dropped %d", block.Delivered(), block.Dropped())
	}
	if lossyGot+lossy.Dropped() != n {
		t.Fatalf("drop-newest: delivered %d + dropped %d != sent %d", lossyGot, lossy.Dropped(), n)
	}
	if lossy.Dropped() == 0 {
		t.Fatal("drop-newest subscriber dropped nothing; test did not exercise overflow")
	}
	st := b.Stats().Types["bulk"]
	if st.MsgsIn != n || st.Dropped != lossy.Dropped() {
		t.Fatalf("type stats %+v, want in=%d dropped=%d", st, n, lossy.Dropped())
	}
	t.Logf("drop-newest delivered %d dropped %d", lossyGot, lossy.Dropped())
}

func TestDropOldestKeepsNewest(t *testing.T) {
	a, b := pair(t, Options{})
	sub, err := b.Subscribe("tick", SubscribeOptions{Buffer: 10, Policy: DropOldest})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for i := range 100 {
		if err := a.Send(ctx, b.h.ID(), "tick", []byte{byte(i)}, SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A message is counted in before it reaches the subscription: wait
	// until every one is queued or dropped.
	testutil.Eventually(t, 5*time.Second, "100 messages in and queued or dropped", func() bool {
		return b.Stats().Types["tick"].MsgsIn == 100 && sub.Dropped()+uint64(sub.queued()) == 100
	})
	if sub.Dropped() != 90 {
		t.Fatalf("dropped %d, want 90", sub.Dropped())
	}
	for i := 90; i < 100; i++ {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Payload[0] != byte(i) {
			t.Fatalf("got %d want %d", m.Payload[0], i)
		}
	}
	if ss := b.Stats().Subscriptions[0]; ss.Dropped != 90 || ss.Delivered != 10 || ss.Policy != DropOldest {
		t.Fatalf("subscription stats %+v", ss)
	}
}

// Queue many Low messages while the receiver is stalled, then High ones:
// High overtakes the queued Low ones and every Low still arrives.
func TestPriorities(t *testing.T) {
	a, b := pair(t, Options{SendQueue: 4096})
	sub, err := b.Subscribe("prio", SubscribeOptions{Buffer: 1, Policy: Block})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	const lows, highs = 3000, 200
	payload := make([]byte, 1024) // lows must overflow the yamux window and read buffers
	for i := range lows {
		payload[0] = 'L'
		binary.BigEndian.PutUint32(payload[1:], uint32(i))
		if err := a.Send(ctx, b.h.ID(), "prio", payload, SendOptions{Priority: Low}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the writer is stuck on the stalled stream and Lows are queued.
	testutil.Eventually(t, 10*time.Second, "low queue to back up", func() bool {
		ps := a.Stats().Peers
		return len(ps) == 1 && ps[0].Queued.Low > lows/2
	})
	for i := range highs {
		payload[0] = 'H'
		binary.BigEndian.PutUint32(payload[1:], uint32(i))
		if err := a.Send(ctx, b.h.ID(), "prio", payload, SendOptions{Priority: High}); err != nil {
			t.Fatal(err)
		}
	}
	lowsBeforeLastHigh, highSeen, lowSeen := 0, 0, 0
	for range lows + highs {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d high %d low: %v", highSeen, lowSeen, err)
		}
		if m.Payload[0] == 'H' {
			highSeen++
			if highSeen == highs {
				lowsBeforeLastHigh = lowSeen
			}
		} else {
			if got := binary.BigEndian.Uint32(m.Payload[1:]); got != uint32(lowSeen) {
				t.Fatalf("low out of order: got %d want %d", got, lowSeen)
			}
			lowSeen++
		}
	}
	if highSeen != highs || lowSeen != lows {
		t.Fatalf("got %d high %d low", highSeen, lowSeen)
	}
	if lowsBeforeLastHigh > lows/2 {
		t.Fatalf("%d of %d lows arrived before the last high: high did not overtake", lowsBeforeLastHigh, lows)
	}
	t.Logf("all %d highs arrived after %d of %d lows", highs, lowsBeforeLastHigh, lows)
}

func TestDedup(t *testing.T) {
	a, b := pair(t, Options{})
	dd, err := b.Subscribe("dd", SubscribeOptions{Dedup: true})
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.Subscribe("dd", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	id1, id2 := ID{1}, ID{2}
	for _, id := range []ID{id1, id1, id2, id1, id2} {
		if err := a.Send(ctx, b.h.ID(), "dd", id[:1], SendOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := all.Next(ctx); err != nil {
			t.Fatalf("plain sub message %d: %v", i, err)
		}
	}
	got := map[ID]int{}
	for range 2 {
		m, err := dd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[m.ID]++
	}
	if got[id1] != 1 || got[id2] != 1 {
		t.Fatalf("dedup got %v", got)
	}
	testutil.Eventually(t, 5*time.Second, "duplicates counted", func() bool { return dd.Duplicates() == 3 })
	if st := b.Stats().Types["dd"]; st.Dups != 3 {
		t.Fatalf("type stats %+v", st)
	}
}

// A message evicted by DropOldest is forgotten by Dedup, so its retry arrives.
func TestDedupForgetsDropped(t *testing.T) {
	a, b := pair(t, Options{})
	sub, err := b.Subscribe("dd", SubscribeOptions{Dedup: true, Buffer: 1, Policy: DropOldest})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	send := func(id ID) {
		if err := a.Send(ctx, b.h.ID(), "dd", nil, SendOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	send(ID{1})
	send(ID{2}) // evicts 1
	testutil.Eventually(t, 5*time.Second, "eviction", func() bool { return sub.Dropped() == 1 })
	send(ID{2}) // duplicate of the queued one
	send(ID{1}) // retry of the evicted one: must be delivered (evicts 2)
	// A message is counted in before it reaches the subscription: wait
	// until all four are queued, dropped or discarded as duplicates.
	testutil.Eventually(t, 5*time.Second, "retry", func() bool {
		return b.Stats().Types["dd"].MsgsIn == 4 && sub.Dropped()+sub.Duplicates()+uint64(sub.queued()) == 4
	})
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != (ID{1}) || sub.Duplicates() != 1 || sub.Dropped() != 2 {
		t.Fatalf("got %v, dups %d, dropped %d", m.ID, sub.Duplicates(), sub.Dropped())
	}
}

func TestRequestResponse(t *testing.T) {
	a, b := pair(t, Options{})
	if _, err := b.Handle("echo", func(ctx context.Context, m *Message) ([]byte, error) {
		return bytes.ToUpper(m.Payload), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Handle("echo", func(context.Context, *Message) ([]byte, error) { return nil, nil }); err == nil {
		t.Fatal("second handler for a type was accepted")
	}
	if _, err := b.Handle("fail", func(ctx context.Context, m *Message) ([]byte, error) {
		return nil, errors.New("boom")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Handle("panic", func(ctx context.Context, m *Message) ([]byte, error) { panic("oops") }); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	var wg sync.WaitGroup
	for i := range 50 { // concurrent requests are matched to their replies
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("req-%d", i)
			r, err := a.Request(ctx, b.h.ID(), "echo", []byte(want))
			if err != nil {
				t.Error(err)
				return
			}
			if string(r.Payload) != strings.ToUpper(want) || r.From != b.h.ID() {
				t.Errorf("reply %q from %s, want %q", r.Payload, r.From, strings.ToUpper(want))
			}
		}()
	}
	wg.Wait()

	_, err := a.Request(ctx, b.h.ID(), "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "boom" {
		t.Fatalf("handler error: got %v", err)
	}
	_, err = a.Request(ctx, b.h.ID(), "nobody", nil)
	if !errors.As(err, &re) || !strings.Contains(err.Error(), `no handler for type "nobody"`) {
		t.Fatalf("missing handler: got %v", err)
	}
	_, err = a.Request(ctx, b.h.ID(), "panic", nil)
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking handler: got %v", err)
	}
	if st := b.Stats().Types[OtherType]; st.Unhandled != 1 {
		t.Fatalf("unknown request type not counted as unhandled under %s: %+v", OtherType, st)
	}
}

func TestRequestTimeout(t *testing.T) {
	a, b := pair(t, Options{RequestTimeout: 200 * time.Millisecond})
	release := make(chan struct{})
	deadline := make(chan time.Time, 1)
	if _, err := b.Handle("slow", func(ctx context.Context, m *Message) ([]byte, error) {
		dl, _ := ctx.Deadline() // the requester's remaining time travels with the request
		deadline <- dl
		<-release
		return []byte("late"), nil
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := a.Request(context.Background(), b.h.ID(), "slow", nil) // default timeout applies
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Fatalf("timed out after %s, want ~200ms", el)
	}
	if dl := <-deadline; dl.IsZero() || dl.Before(start) || dl.After(start.Add(time.Second)) {
		t.Fatalf("handler deadline %v, want about start+200ms (start %v)", dl, start)
	}
	if a.Stats().PendingRequests != 0 {
		t.Fatal("timed-out request still pending")
	}
	close(release) // the handler answers after the requester gave up
	testutil.Eventually(t, 5*time.Second, "late reply counted", func() bool { return a.Stats().LateReplies == 1 })
}

func TestOversizeSend(t *testing.T) {
	a, b := pair(t, Options{MaxMessageSize: 1024})
	err := a.Send(ctxT(t, 5*time.Second), b.h.ID(), "big", make([]byte, 2000), SendOptions{})
	if err == nil || !strings.Contains(err.Error(), "2000") || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("got %v, want error naming size 2000 and limit 1024", err)
	}
	if err := a.Send(ctxT(t, 5*time.Second), b.h.ID(), "big", make([]byte, 1024), SendOptions{}); err != nil {
		t.Fatalf("payload at the limit: %v", err)
	}
}

// A frame whose length prefix exceeds the limit resets the stream before any
// body is read or allocated.
func TestOversizeFrameOnWire(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	b := newService(t, hb, Options{MaxMessageSize: 1024})
	ctx := ctxT(t, 10*time.Second)
	str, err := ha.NewStream(ctx, hb.ID(), b.Protocol())
	if err != nil {
		t.Fatal(err)
	}
	defer str.Reset()
	if _, err := str.Write(protowire.AppendVarint(nil, 1<<30)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "bad frame counted", func() bool { return b.Stats().BadFrames == 1 })
	assertReset(t, str)
}

func TestFrameReaderRejectsBeforeAlloc(t *testing.T) {
	in := protowire.AppendVarint(nil, 1<<20+1) // one byte over the limit
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		fr := newFrameReader(bytes.NewReader(in), 1<<20, 16)
		if _, err := fr.next(); !errors.Is(err, errFrameTooLarge) || !strings.Contains(err.Error(), "1048577") {
			t.Fatalf("got %v, want errFrameTooLarge naming the size", err)
		}
		if cap(fr.buf) != 0 {
			t.Fatal("buffer allocated for an oversized frame")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 4<<10 {
		t.Fatalf("%d bytes allocated per rejected frame", per)
	}
}

func TestNetworksDoNotMix(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	a := newService(t, ha, Options{Network: "alpha"})
	b := newService(t, hb, Options{Network: "beta"})
	if _, err := b.Subscribe("x", SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	err := a.Send(ctxT(t, 10*time.Second), hb.ID(), "x", []byte("hi"), SendOptions{})
	if err == nil {
		t.Fatal("send across networks succeeded")
	}
	if !strings.Contains(err.Error(), "/warren/alpha/msg/1.0.0") {
		t.Fatalf("error does not name the protocol: %v", err)
	}
	if in := b.Stats().Types["x"].MsgsIn; in != 0 {
		t.Fatalf("beta received %d messages from alpha", in)
	}
}

func TestUnknownPeer(t *testing.T) {
	a := newService(t, newHost(t), Options{OpenTimeout: 2 * time.Second})
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Send(ctxT(t, 10*time.Second), p, "x", nil, SendOptions{})
	if err == nil || !strings.Contains(err.Error(), p.String()) {
		t.Fatalf("got %v, want an error naming the peer", err)
	}
	if err := a.Send(ctxT(t, 10*time.Second), a.h.ID(), "x", nil, SendOptions{}); err == nil || !strings.Contains(err.Error(), "self") {
		t.Fatalf("send to self: %v", err)
	}
}

// When the stream dies with messages queued, they are counted and the next
// Send says so; the Send after that reopens the stream.
func TestStreamFailureReported(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	a := newService(t, ha, Options{SendQueue: 1000})
	b := newService(t, hb, Options{})
	if _, err := b.Subscribe("stall", SubscribeOptions{Buffer: 1}); err != nil { // never read: stalls a's writer
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Second)
	payload := make([]byte, 4096)
	for range 1000 {
		if err := a.Send(ctx, hb.ID(), "stall", payload, SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "queue to back up", func() bool {
		ps := a.Stats().Peers
		return len(ps) == 1 && ps[0].Queued.Normal > 0
	})
	if err := ha.Network().ClosePeer(hb.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "loss recorded", func() bool {
		ps := a.Stats().Peers
		return len(ps) == 1 && ps[0].Lost > 0 && !ps[0].Open
	})
	lost := a.Stats().Peers[0].Lost
	if st := a.Stats().Types["stall"]; st.SendFailed != lost {
		t.Fatalf("type SendFailed %d, peer lost %d", st.SendFailed, lost)
	}
	err := a.Send(ctx, hb.ID(), "stall", nil, SendOptions{})
	if !errors.Is(err, ErrMessagesLost) || !strings.Contains(err.Error(), fmt.Sprint(lost)) {
		t.Fatalf("next send: got %v, want ErrMessagesLost naming %d", err, lost)
	}
	// The next one reconnects (the peerstore still has b's address).
	if err := a.Send(ctx, hb.ID(), "stall", nil, SendOptions{}); err != nil {
		t.Fatalf("send after reporting the loss: %v", err)
	}
	st := a.Stats().Types["stall"]
	if st.MsgsOut+st.SendFailed > 1001 {
		t.Fatalf("counted more than sent: %+v", st)
	}
}

func TestMetricsBoundedLabels(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	reg := prometheus.NewRegistry()
	a := newService(t, ha, Options{Network: "m"})
	b := newService(t, hb, Options{Network: "m", Registerer: reg})
	if _, err := b.Subscribe("known", SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for i := range 20 {
		if err := a.Send(ctx, hb.ID(), fmt.Sprintf("junk-%d", i), []byte("x"), SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(ctx, hb.ID(), "known", []byte("x"), SendOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "messages in", func() bool { return b.Stats().Types["known"].MsgsIn == 1 })
	testutil.Eventually(t, 5*time.Second, "junk in", func() bool { return b.Stats().Types[OtherType].MsgsIn == 20 })
	if st := b.Stats().Types[OtherType]; st.Unhandled != 20 {
		t.Fatalf("other: %+v", st)
	}
	series := func() int {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	before := series()
	// Requests of types b does not know: b answers "no handler" without
	// making the type known (the reply is counted as OtherType).
	const asks = 20
	for i := range asks {
		typ := fmt.Sprintf("ask-%d", i)
		var re *RemoteError
		if _, err := a.Request(ctx, hb.ID(), typ, []byte("x")); !errors.As(err, &re) || !strings.Contains(re.Message, "no handler") {
			t.Fatalf("request %q: %v; want a no-handler RemoteError", typ, err)
		}
		if b.knownType(typ) != nil {
			t.Fatalf("after an unhandled request of %q the type is known", typ)
		}
	}
	// A reply is counted once written, which may be just after it arrived.
	testutil.Eventually(t, 5*time.Second, "replies counted", func() bool { return b.Stats().Types[OtherType].MsgsOut == asks })
	st := b.Stats()
	if len(st.Types) != 2 || st.Types[OtherType].Unhandled != 20+asks || st.Types[OtherType].MsgsOut != asks {
		t.Fatalf("after %d unhandled requests of invented types: types %+v; want only \"known\" and %s, with the requests unhandled and the replies sent as %s",
			asks, st.Types, OtherType, OtherType)
	}
	if after := series(); after != before {
		t.Fatalf("requests of invented types changed the series from %d to %d", before, after)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && (strings.HasPrefix(l.GetValue(), "junk") || strings.HasPrefix(l.GetValue(), "ask")) {
					t.Fatalf("remote-invented type got a series: %s", mf.GetName())
				}
			}
			if mf.GetName() == "warren_msg_messages_total" {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["direction"] == "in" && labels["type"] == OtherType && m.GetCounter().GetValue() == 20+asks && labels["network"] == "m" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatalf("no warren_msg_messages_total{direction=in,type=(other)} = %d", 20+asks)
	}
	// Close unregisters, so a new service can register on the same registry.
	_ = b.Close()
	if _, err := New(context.Background(), hb, Options{Network: "m", Registerer: reg}); err != nil {
		t.Fatalf("re-register after Close: %v", err)
	}
}

// Every open subscription's drops are a series of their own, labelled by
// its local id, that ends when the subscription closes.
func TestMetricsSubscriptionDrops(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	reg := prometheus.NewRegistry()
	a := newService(t, ha, Options{Network: "m"})
	b := newService(t, hb, Options{Network: "m", Registerer: reg})
	newest, err := b.Subscribe("flood", SubscribeOptions{Buffer: 2, Policy: DropNewest})
	if err != nil {
		t.Fatal(err)
	}
	oldest, err := b.Subscribe("flood", SubscribeOptions{Buffer: 5, Policy: DropOldest})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for i := range 10 {
		if err := a.Send(ctx, hb.ID(), "flood", []byte{byte(i)}, SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A message is counted in before it reaches the subscriptions: wait
	// until each has queued or dropped all ten.
	testutil.Eventually(t, 5*time.Second, "messages in and queued or dropped", func() bool {
		return b.Stats().Types["flood"].MsgsIn == 10 &&
			newest.Dropped()+uint64(newest.queued()) == 10 && oldest.Dropped()+uint64(oldest.queued()) == 10
	})
	// subDrops returns the series by subscription label.
	subDrops := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "warren_msg_subscription_dropped_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["type"] != "flood" || labels["network"] != "m" {
					t.Errorf("series labels %v", labels)
				}
				got[labels["subscription"]] = m.GetCounter().GetValue()
			}
		}
		return got
	}
	idN, idO := fmt.Sprint(newest.id), fmt.Sprint(oldest.id)
	if got := subDrops(); len(got) != 2 || got[idN] != 8 || got[idO] != 5 {
		t.Fatalf("warren_msg_subscription_dropped_total by subscription: %v; want %s: 8, %s: 5", got, idN, idO)
	}
	newest.Close()
	if got := subDrops(); len(got) != 1 || got[idO] != 5 {
		t.Fatalf("after closing subscription %s: %v; want only %s: 5", idN, got, idO)
	}
	oldest.Close()
	if got := subDrops(); len(got) != 0 {
		t.Fatalf("after closing every subscription: %v", got)
	}
}

func TestValidation(t *testing.T) {
	h := newHost(t)
	for _, o := range []Options{
		{Network: "a/b"}, {Network: strings.Repeat("n", 65)}, {MaxMessageSize: -1},
		{MaxMessageSize: MaxMaxMessageSize + 1}, {SendQueue: -1}, {RequestTimeout: -1},
	} {
		if _, err := New(context.Background(), h, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	s := newService(t, h, Options{})
	for _, typ := range []string{"", "a b", strings.Repeat("x", 65), "é", "(other)"} {
		if _, err := s.Subscribe(typ, SubscribeOptions{}); err == nil || !strings.Contains(err.Error(), "type") {
			t.Errorf("Subscribe(%q): %v", typ, err)
		}
	}
	if _, err := s.Subscribe("ok", SubscribeOptions{Buffer: -1}); err == nil {
		t.Error("negative buffer accepted")
	}
	if _, err := s.Subscribe("ok", SubscribeOptions{Policy: 7}); err == nil {
		t.Error("bad policy accepted")
	}
	if err := s.Send(context.Background(), "x", "ok", nil, SendOptions{Priority: 9}); err == nil {
		t.Error("bad priority accepted")
	}
	if _, err := s.Handle("ok", nil); err == nil {
		t.Error("nil handler accepted")
	}
	for in, want := range map[string]Priority{"high": High, "Normal": Normal, "": Normal, "LOW": Low} {
		if got, err := ParsePriority(in); err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParsePriority("urgent"); err == nil || !strings.Contains(err.Error(), "high, normal, low") {
		t.Errorf("ParsePriority(urgent): %v", err)
	}
	for in, want := range map[string]Policy{"block": Block, "drop-oldest": DropOldest, "drop_newest": DropNewest, "": Block} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParsePolicy("lossy"); err == nil {
		t.Error("ParsePolicy(lossy) accepted")
	}
	id := ID{0xab, 1}
	back, err := ParseID(id.String())
	if err != nil || back != id {
		t.Errorf("ParseID round trip: %v %v", back, err)
	}
	if _, err := ParseID("zz"); err == nil {
		t.Error("ParseID(zz) accepted")
	}
}

func TestSubscriptionCloseAndServiceClose(t *testing.T) {
	a, b := pair(t, Options{})
	sub, err := b.Subscribe("c", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for range 3 {
		if err := a.Send(ctx, b.h.ID(), "c", nil, SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "3 queued", func() bool { return sub.queued() == 3 })
	sub.Close()
	if sub.Dropped() != 3 {
		t.Fatalf("closing with 3 queued: dropped %d", sub.Dropped())
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := a.Send(ctx, b.h.ID(), "c", nil, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "unhandled counted", func() bool { return b.Stats().Types["c"].Unhandled == 1 })

	// A Block subscription that is full holds the reader, waiting for room
	// with the next message: Close counts that one too before it returns.
	full, err := b.Subscribe("f", SubscribeOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := a.Send(ctx, b.h.ID(), "f", nil, SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The reader counts the second message in before it waits for room:
	// wait for the wait itself.
	testutil.Eventually(t, 5*time.Second, "1 queued, 1 waiting", func() bool {
		return b.Stats().Types["f"].MsgsIn == 2 && full.queued() == 1 && full.waitingForRoom() == 1
	})
	full.Close()
	if n := full.Dropped(); n != 2 {
		t.Fatalf("closing with 1 queued and 1 waiting for room: Dropped %d right after Close, want 2", n)
	}
	testutil.Eventually(t, 5*time.Second, "the third unhandled", func() bool { return b.Stats().Types["f"].Unhandled == 1 })
	if st := b.Stats().Types["f"]; st.Dropped != 2 {
		t.Fatalf("type stats after Close: %+v; want 2 dropped", st)
	}

	waiting, err := b.Subscribe("w", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := waiting.Next(context.Background()); done <- err }()
	_ = b.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next during Close: %v", err)
	}
	if err := b.Send(ctx, a.h.ID(), "c", nil, SendOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// With a MaxMessageSize smaller than an error's text, the requester still
// gets the error at once (cut to the limit), not its own timeout.
func TestErrorReplyFitsTinyLimit(t *testing.T) {
	a, b := pair(t, Options{MaxMessageSize: 10})
	if _, err := b.Handle("fail", func(context.Context, *Message) ([]byte, error) {
		return nil, errors.New("a handler error much longer than ten bytes")
	}); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"fail", "nobody-handles-this"} {
		start := time.Now()
		_, err := a.Request(ctxT(t, 10*time.Second), b.h.ID(), typ, []byte("q"))
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: err = %v, want the remote error", typ, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: the error took %v", typ, d)
		}
	}
}
