package e2e

// The hostile-peer suite: one test per known attack on a daemon process.
// Each attacker is a plain libp2p host in this process speaking warren's
// wire protocols by hand; during each attack (hostileAttack long, every loop
// bounded in count and time) the shared watcher (underAttack) checks that
// the daemon's RSS, fds, goroutines and log output stay bounded and that an
// honest peer's requests are still answered quickly. See docs/security.md, "How it is tested".

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/warren-p2p/warren/msg"
)

// deadlineOf is ctx's deadline (attacks always have one).
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// onMsgStreams opens n msg streams from a to the victim at once, each with
// the attack's deadline for writes, runs attack(i, s) on each, resets them
// and returns how many opened.
func onMsgStreams(ctx context.Context, a host.Host, v *victim, n int, attack func(i int, s network.Stream)) int64 {
	var opened atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := a.NewStream(ctx, v.addr.ID, v.msgProto())
			if err != nil {
				return
			}
			defer s.Reset()
			opened.Add(1)
			_ = s.SetWriteDeadline(deadlineOf(ctx))
			attack(i, s)
		})
	}
	wg.Wait()
	return opened.Load()
}

// TestHostileControl calibrates the watcher: a benign peer making ordinary
// requests (and reading the replies) during the window must pass every
// bound, so a failure of another test is the attack's doing.
func TestHostileControl(t *testing.T) {
	v := startVictim(t)
	h := newHost(t)
	connect(t, h, v)
	svc, err := msg.New(context.Background(), h, msg.Options{Network: v.network})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	v.underAttack(t, "control", limits{}, func(ctx context.Context) string {
		n := 0
		for ; n < 500 && ctx.Err() == nil; n++ {
			rctx, cancel := context.WithTimeout(ctx, hostileProbeTimeout)
			_, err := svc.Request(rctx, v.addr.ID, echoType, make([]byte, 1024))
			cancel()
			if err != nil && ctx.Err() == nil {
				t.Errorf("benign request %d: %v", n, err)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		<-ctx.Done()
		return fmt.Sprintf("%d benign requests of 1 KiB, replies read", n)
	})
}

// TestHostileRequestFlood: one peer sends requests to a type nobody handles
// on 200 streams and never reads the (error) replies. Before hardening the
// replies filled the send queue to that peer, every handler slot waited on
// it, and other peers' requests timed out.
func TestHostileRequestFlood(t *testing.T) {
	v := startVictim(t)
	a := newAttacker(t, v)
	held := newHoldStreams() // the victim's reply stream: accepted, never read
	a.SetStreamHandler(v.msgProto(), held.handle)
	t.Cleanup(held.release)
	const streams, perStream, batch = 200, 250, 50
	v.underAttack(t, "request flood", limits{}, func(ctx context.Context) string {
		var sent atomic.Int64
		opened := onMsgStreams(ctx, a, v, streams, func(i int, s network.Stream) {
			var buf []byte
			for n := 0; n < perStream && ctx.Err() == nil; n += batch {
				buf = buf[:0]
				for k := range batch {
					corr := uint64(i*perStream + n + k + 1)
					buf = msgFrame(buf, "hostile.nohandler", []byte("x"), flagRequest, corr, 10_000)
				}
				if _, err := s.Write(buf); err != nil {
					return
				}
				sent.Add(batch)
				// 10,000 requests in all every 500 ms: the flood lasts
				// about as long as the probes.
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
			<-ctx.Done() // keep the stream open for the whole attack
		})
		return fmt.Sprintf("%d streams, %d requests to a type without handler; replies never read", opened, sent.Load())
	})
}

// TestHostileHugeFrames: frames that declare the largest size accepted and
// send all but their last byte, on 250 streams of one peer. Before
// hardening the reader allocated (and filled) the declared size per
// stream. messages.max_message_size is 1 MiB here so the attacker sends
// 250 MiB rather than 1 GiB; the unhardened daemon grows by about that.
func TestHostileHugeFrames(t *testing.T) {
	const maxMsg = 1 << 20
	v := startVictim(t, "max_message_size = 4194304", fmt.Sprintf("max_message_size = %d", maxMsg))
	a := newAttacker(t, v)
	const streams = 250
	const body = maxMsg + 256 // msg's envelope overhead: the largest frame accepted
	v.underAttack(t, "huge frames", limits{}, func(ctx context.Context) string {
		var bytes atomic.Int64
		chunk := make([]byte, 64<<10)
		opened := onMsgStreams(ctx, a, v, streams, func(_ int, s network.Stream) {
			if _, err := s.Write(protowire.AppendVarint(nil, body)); err != nil {
				return
			}
			for left := body - 1; left > 0 && ctx.Err() == nil; {
				n, err := s.Write(chunk[:min(left, len(chunk))])
				bytes.Add(int64(n))
				if err != nil {
					return
				}
				left -= n
			}
			<-ctx.Done() // the last byte never comes
		})
		return fmt.Sprintf("%d streams each declaring a %d-byte frame; %s of frame bodies written", opened, body, mib(bytes.Load()))
	})
}

// TestHostileIdleStreams: one peer opens thousands of msg streams (the
// per-peer stream cap is 16,384) and leaves them idle, each holding the
// first byte of a frame length.
func TestHostileIdleStreams(t *testing.T) {
	v := startVictim(t)
	a := newAttacker(t, v)
	const maxStreams, openers = 5000, 4
	var mu sync.Mutex
	var open []network.Stream
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range open {
			_ = s.Reset()
		}
	})
	v.underAttack(t, "idle streams", limits{}, func(ctx context.Context) string {
		var opened, refused atomic.Int64
		var wg sync.WaitGroup
		for range openers {
			wg.Go(func() {
				for opened.Load() < maxStreams && ctx.Err() == nil {
					s, err := a.NewStream(ctx, v.addr.ID, v.msgProto())
					if err != nil {
						refused.Add(1)
						continue
					}
					// One byte of a varint: the reader waits for the rest.
					// The write also sends the lazy protocol negotiation.
					_ = s.SetWriteDeadline(deadlineOf(ctx))
					if _, err := s.Write([]byte{0x80}); err != nil {
						refused.Add(1)
						_ = s.Reset()
						continue
					}
					opened.Add(1)
					mu.Lock()
					open = append(open, s)
					mu.Unlock()
					time.Sleep(3 * time.Millisecond) // ~1,300 streams a second in all
				}
			})
		}
		wg.Wait()
		<-ctx.Done()
		// Streams the victim reset are not idle any more: writing a second
		// byte of the varint fails on them. (The victim closes its write
		// side of every msg stream, so reading tells nothing.)
		mu.Lock()
		alive := 0
		for _, s := range open {
			_ = s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := s.Write([]byte{0x80}); err == nil {
				alive++
			}
		}
		mu.Unlock()
		return fmt.Sprintf("%d idle streams opened (%d failed to open or write), %d still open at the end", opened.Load(), refused.Load(), alive)
	})
}

// TestHostileUnreadSubscription: a local subscriber (`warren recv`) that
// never reads its stdout, and a peer sending it 1 MiB messages. Before
// hardening the subscription queue held up to 1,024 messages whatever
// their size (4 GiB at the default 4 MiB limit).
func TestHostileUnreadSubscription(t *testing.T) {
	v := startVictim(t)
	const typ = "hostile.sub"
	startCLI(t, v.Repo, nil, "recv", "--raw", typ) // its stdout is never read
	waitSubscribers(t, v.Repo, typ, 1)
	a := newAttacker(t, v)
	const msgs, size = 256, 1 << 20
	v.underAttack(t, "unread subscription", limits{}, func(ctx context.Context) string {
		s, err := a.NewStream(ctx, v.addr.ID, v.msgProto())
		if err != nil {
			return "stream refused: " + err.Error()
		}
		defer s.Reset()
		_ = s.SetWriteDeadline(deadlineOf(ctx))
		payload := make([]byte, size)
		var buf []byte
		sent := 0
		for ; sent < msgs && ctx.Err() == nil; sent++ {
			buf = msgFrame(buf[:0], typ, payload, 0, 0, 0)
			if _, err := s.Write(buf); err != nil {
				break
			}
		}
		<-ctx.Done()
		queued := -1
		for _, sub := range stats(t, v.Repo).Subscriptions {
			if sub.Type == typ {
				queued = sub.Queued
			}
		}
		return fmt.Sprintf("%d messages of %s written; %d queued in the unread subscription at the end", sent, mib(size), queued)
	})
}

// TestHostileTopicFlood: one peer announces 300,000 GossipSub topics in
// subscription RPCs (raw frames on the victim's GossipSub protocol).
func TestHostileTopicFlood(t *testing.T) {
	v := startVictim(t)
	a := newAttacker(t, v)
	for _, p := range []string{"1.3.0", "1.2.0", "1.1.0"} {
		a.SetStreamHandler(protocol.ID("/warren/"+v.network+"/meshsub/"+p), discard)
	}
	eventually(t, 10*time.Second, func() error {
		if ps, _ := a.Peerstore().SupportsProtocols(v.addr.ID, v.gossipProto()); len(ps) == 0 {
			return fmt.Errorf("victim does not announce %s", v.gossipProto())
		}
		return nil
	})
	const topics, perRPC = 300_000, 5000
	v.underAttack(t, "topic flood", limits{}, func(ctx context.Context) string {
		s, err := a.NewStream(ctx, v.addr.ID, v.gossipProto())
		if err != nil {
			return "stream refused: " + err.Error()
		}
		defer s.Reset()
		_ = s.SetWriteDeadline(deadlineOf(ctx))
		sub := true
		announced := 0
		for announced < topics && ctx.Err() == nil {
			rpc := &pb.RPC{}
			for range perRPC {
				name := v.topicName(fmt.Sprintf("flood-%07d", announced))
				rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Subscribe: &sub, Topicid: &name})
				announced++
			}
			b, err := proto.Marshal(rpc)
			if err != nil {
				t.Error(err)
				break
			}
			if _, err := s.Write(rawFrame(nil, b)); err != nil {
				announced -= perRPC
				break
			}
			time.Sleep(50 * time.Millisecond) // 60 RPCs over about 4 s
		}
		<-ctx.Done()
		return fmt.Sprintf("%d topics announced in RPCs of %d", announced, perRPC)
	})
}

// TestHostileRefusedStreams: one peer opens stream after stream to a tunnel
// listener whose allow list does not name it. Each is refused (and
// counted); before hardening each also logged a WARN.
func TestHostileRefusedStreams(t *testing.T) {
	v := startVictim(t)
	srv := startTarget(t, false)
	const proto = "/x/hostile-secret"
	tunnelListen(t, v.daemon, proto, srv.maddr, "--allow", randomPeer(t).String(), "--temp")
	a := newAttacker(t, v)
	eventually(t, 10*time.Second, func() error {
		if ps, _ := a.Peerstore().SupportsProtocols(v.addr.ID, proto); len(ps) == 0 {
			return fmt.Errorf("victim does not announce %s", proto)
		}
		return nil
	})
	const maxStreams, workers = 20_000, 16
	v.underAttack(t, "refused streams", limits{}, func(ctx context.Context) string {
		var tried, reset atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				buf := make([]byte, 1)
				for tried.Add(1) <= maxStreams && ctx.Err() == nil {
					s, err := a.NewStream(ctx, v.addr.ID, proto)
					if err != nil {
						continue
					}
					_ = s.SetDeadline(deadlineOf(ctx))
					if _, err := s.Write([]byte("x")); err == nil {
						if _, err := s.Read(buf); err != nil && ctx.Err() == nil {
							reset.Add(1)
						}
					}
					_ = s.Reset()
				}
			})
		}
		wg.Wait()
		return fmt.Sprintf("%d streams opened to a tunnel that refuses the peer, %d seen reset", min(tried.Load(), maxStreams), reset.Load())
	})
	if n := srv.accepted.Load(); n != 0 {
		t.Errorf("the tunnel target accepted %d connections from a refused peer", n)
	}
	if ts := tunnels(t, v.daemon); len(ts) != 1 || ts[0].Refused == 0 {
		t.Errorf("tunnel after the attack: %+v; want its refusals counted", ts)
	}
}

// TestHostileUDPSources: datagrams from 340 source ports into a UDP forward
// whose peer is unreachable (its address accepts TCP and never answers the
// handshake). Each source is a session waiting for the stream; before
// hardening each queued up to 128 datagrams of up to 64 KiB.
func TestHostileUDPSources(t *testing.T) {
	v := startVictim(t)
	bh, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var bhMu sync.Mutex
	var bhConns []net.Conn
	var bhWG sync.WaitGroup
	bhWG.Go(func() {
		for {
			c, err := bh.Accept()
			if err != nil {
				return
			}
			bhMu.Lock()
			bhConns = append(bhConns, c)
			bhMu.Unlock()
		}
	})
	t.Cleanup(func() {
		bh.Close()
		bhWG.Wait()
		bhMu.Lock()
		for _, c := range bhConns {
			c.Close()
		}
		bhMu.Unlock()
	})
	target := addrOf(t, bh.Addr()) + "/p2p/" + randomPeer(t).String()
	_, fwd := tunnelForward(t, v.daemon, "/x/hostile-udp", "/ip4/127.0.0.1/udp/0", target, "--temp")
	const sources, rounds, size = 340, 16, 60_000
	v.underAttack(t, "UDP sources", limits{}, func(ctx context.Context) string {
		conns := make([]net.Conn, 0, sources)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range sources {
			c, err := net.Dial("udp4", fwd)
			if err != nil {
				t.Error(err)
				return "dial failed"
			}
			conns = append(conns, c)
		}
		dgram := make([]byte, size)
		sent, failed := 0, 0
		// About 4 datagrams a millisecond (240 MB/s): fast, yet slow enough
		// for the victim's socket buffer not to drop most of them.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
	send:
		for range rounds {
			for i, c := range conns {
				if i%4 == 0 {
					select {
					case <-ctx.Done():
						break send
					case <-tick.C:
					}
				}
				if _, err := c.Write(dgram); err != nil {
					failed++
				} else {
					sent++
				}
			}
		}
		<-ctx.Done()
		return fmt.Sprintf("%d datagrams of %d bytes from %d source ports (%d send errors) into a forward to an unreachable peer", sent, size, sources, failed)
	})
}

// TestHostileMalformedFrames: one peer sends malformed frames (bad type,
// missing id, bad flags, bad field encoding) on a few streams and declares
// oversized frames on many more. Each was logged as a WARN of its own.
func TestHostileMalformedFrames(t *testing.T) {
	v := startVictim(t)
	a := newAttacker(t, v)
	bad := [][]byte{
		// type "bad type!" is not a valid type name
		rawFrame(nil, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "bad type!")),
		// a valid type, no id
		rawFrame(nil, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "hostile.x")),
		// unknown flags
		badFlags(),
		// field 1 as a varint: wrong wire type
		rawFrame(nil, protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)),
	}
	var batch []byte
	for i := range 500 {
		batch = append(batch, bad[i%len(bad)]...)
	}
	const streams, perStream, oversized = 4, 25_000, 200
	v.underAttack(t, "malformed frames", limits{}, func(ctx context.Context) string {
		var frames, resets atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			for range oversized {
				select {
				case <-ctx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
				s, err := a.NewStream(ctx, v.addr.ID, v.msgProto())
				if err != nil {
					continue
				}
				_ = s.SetDeadline(deadlineOf(ctx))
				if _, err := s.Write(protowire.AppendVarint(nil, 1<<30)); err == nil {
					if _, err := s.Read(make([]byte, 1)); err != nil && ctx.Err() == nil {
						resets.Add(1)
					}
				}
				_ = s.Reset()
			}
		})
		onMsgStreams(ctx, a, v, streams, func(_ int, s network.Stream) {
			for n := 0; n < perStream && ctx.Err() == nil; n += 500 {
				if _, err := s.Write(batch); err != nil {
					return
				}
				frames.Add(500)
				// 500 frames per stream every 100 ms (20,000/s in all), so
				// the attack lasts as long as the probes.
				time.Sleep(100 * time.Millisecond)
			}
		})
		wg.Wait()
		return fmt.Sprintf("%d malformed frames on %d streams, %d streams declaring 1 GiB frames (%d seen reset)", frames.Load(), streams, oversized, resets.Load())
	})
	if st := stats(t, v.Repo); !st.Types[echoType].Handler {
		t.Errorf("the echo responder is gone after the attack")
	}
}

func badFlags() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, "hostile.x")
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, make([]byte, 16))
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, 64)
	return rawFrame(nil, b)
}

// TestHostileIdentityChurn: many fresh peer identities connect, each
// leaves per-peer state behind (a request whose large reply it does not
// read, a GossipSub subscription) and disconnects. The daemon must keep
// nothing about departed peers: the streams to them carried only replies,
// so once their replies have failed (within a few seconds) no entry of
// `warren msg stats` peers may name one; and goroutines and fds must come
// back near their baseline.
func TestHostileIdentityChurn(t *testing.T) {
	v := startVictim(t)
	const churnTopic = "hostile.churn"
	startCLI(t, v.Repo, nil, "sub", churnTopic) // the victim is in the topic
	waitTopicSubscriptions(t, v.Repo, churnTopic, 1)
	// The churning identities' requests have a responder of their own, so
	// the honest probes do not queue behind them in one responder. Its
	// 300 KiB reply is more than the 256 KiB window of a stream whose
	// reader never reads, so it is still being written when the peer goes.
	const churnType = "hostile.churn-big"
	const replySize = 300 << 10
	startCLI(t, v.Repo, nil, "respond", churnType, "--exec", fmt.Sprintf("head -c %d /dev/zero", replySize), "--parallel", "16")
	waitHandler(t, v.Repo, churnType)
	const identities, parallel = 300, 6
	var mu sync.Mutex
	var departed []peer.ID
	l := limits{attack: 12 * time.Second, settledGoroutines: 100, settledFDs: 16}
	v.underAttack(t, "identity churn", l, func(ctx context.Context) string {
		var done, failed atomic.Int64
		var started atomic.Int64
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				for started.Add(1) <= identities && ctx.Err() == nil {
					id, err := churnOnce(ctx, v, churnType, churnTopic)
					if err != nil {
						if failed.Add(1) <= 3 && ctx.Err() == nil {
							t.Logf("identity churn: one identity failed: %v", err)
						}
						continue
					}
					done.Add(1)
					mu.Lock()
					departed = append(departed, id)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return fmt.Sprintf("%d identities connected, left state behind and disconnected (%d failed)", done.Load(), failed.Load())
	})
	mu.Lock()
	gone := map[peer.ID]bool{}
	for _, id := range departed {
		gone[id] = true
	}
	mu.Unlock()
	if len(gone) < 50 {
		t.Fatalf("identity churn: only %d identities completed (is the machine overloaded?); the departed-peer check would say nothing", len(gone))
	}
	keptPeers := func() int {
		kept := 0
		for _, p := range stats(t, v.Repo).Peers {
			if id, err := peer.Decode(p.Peer); err == nil && gone[id] {
				kept++
			}
		}
		return kept
	}
	// A reply still being written when its peer left fails with the
	// disconnect, or at most messages.reply_timeout later: poll a while.
	kept := keptPeers()
	for deadline := time.Now().Add(5 * time.Second); kept > 0 && time.Now().Before(deadline); kept = keptPeers() {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("identity churn: msg stats lists %d of %d departed peers", kept, len(gone))
	if kept > 0 {
		t.Errorf("identity churn: msg stats still lists %d of %d departed peers after 5 s; want none (replies leave no loss record)", kept, len(gone))
	}
	if ti, _ := topic(t, v.Repo, churnTopic); ti.Peers != 0 {
		t.Errorf("identity churn: topic %q still counts %d peers after they all left", churnTopic, ti.Peers)
	}
}

// newChurnHost is a fresh identity on 127.0.0.1; the caller closes it.
func newChurnHost() (host.Host, error) {
	return libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
	)
}

// churnOnce is one fresh identity: connect, subscribe to topic, request
// typ without reading the reply, wait for the victim to open its reply
// stream, disconnect.
func churnOnce(ctx context.Context, v *victim, typ, topic string) (peer.ID, error) {
	h, err := newChurnHost()
	if err != nil {
		return "", err
	}
	defer h.Close()
	held := newHoldStreams()
	h.SetStreamHandler(v.msgProto(), held.handle)
	h.SetStreamHandler(v.gossipProto(), discard)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.Connect(cctx, v.addr); err != nil {
		return "", err
	}
	s, err := h.NewStream(cctx, v.addr.ID, v.msgProto())
	if err != nil {
		return "", err
	}
	_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write(msgFrame(nil, typ, []byte("x"), flagRequest, 1, 5000)); err != nil {
		return "", err
	}
	if g, err := h.NewStream(cctx, v.addr.ID, v.gossipProto()); err == nil {
		sub, name := true, v.topicName(topic)
		b, _ := proto.Marshal(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &sub, Topicid: &name}}})
		_, _ = g.Write(rawFrame(nil, b))
	}
	select {
	case <-held.accepted:
		time.Sleep(100 * time.Millisecond) // the reply fills the window and waits
	case <-cctx.Done():
		return "", fmt.Errorf("the victim never opened its reply stream: %w", cctx.Err())
	}
	held.release()
	return h.ID(), nil
}
