package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/warren-p2p/warren/internal/testutil"
)

const (
	benchNodes    = 50
	benchDegree   = 9 // average connections per node
	benchMessages = 1000
	benchPayload  = 256 // bytes
)

// BenchmarkGossip50Nodes publishes 1,000 signed messages at 1,000 msgs/s,
// from rotating publishers, into a 50-node in-process GossipSub network
// (mocknet, connected random graph of average degree ~9, every node
// subscribed) and reports how many of the 49,000 deliveries arrived and
// their latency. Run with -benchtime 1x: each iteration is one full round.
//
// "pubsub-defaults" uses go-libp2p-pubsub's own queue sizes (32) and no
// flood publishing, for comparison; "warren" uses this package's defaults.
func BenchmarkGossip50Nodes(b *testing.B) {
	pubsubDefaults := Options{OutboundQueueSize: 32, ValidateQueueSize: 32, DisableFloodPublish: true}
	for _, rate := range []int{1000, 100} {
		b.Run(fmt.Sprintf("warren/rate=%d", rate), func(b *testing.B) {
			benchGossip(b, Options{}, SubscribeOptions{}, rate)
		})
		b.Run(fmt.Sprintf("pubsub-defaults/rate=%d", rate), func(b *testing.B) {
			benchGossip(b, pubsubDefaults, SubscribeOptions{Buffer: 32}, rate)
		})
	}
}

func benchGossip(b *testing.B, opts Options, subOpts SubscribeOptions, rate int) {
	mn, hs := newMocknet(b, benchNodes)
	connectRandomGraph(b, mn, hs, benchDegree)

	opts.Network = "bench"
	svcs := make([]*Service, len(hs))
	topics := make([]*Topic, len(hs))
	rec := newRecorder(len(hs), benchMessages)
	var readers sync.WaitGroup
	b.Cleanup(readers.Wait) // registered first, so it runs after the subscriptions close
	for i, h := range hs {
		svcs[i] = newService(b, h, opts)
		sub, err := svcs[i].Subscribe("bench", subOpts)
		if err != nil {
			b.Fatal(err)
		}
		topics[i], _ = svcs[i].Join("bench")
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				m, err := sub.Next(context.Background())
				if err != nil {
					return
				}
				if m.From == hs[i].ID() {
					continue // the publisher's own copy
				}
				seq := binary.BigEndian.Uint64(m.Data)
				sent := int64(binary.BigEndian.Uint64(m.Data[8:]))
				rec.add(i, int(seq), m.Time.Sub(time.Unix(0, sent)))
			}
		}()
		b.Cleanup(func() { _ = sub.Close() })
	}

	// Let GossipSub build its meshes (it grafts on its 1 s heartbeat).
	testutil.Eventually(b, 20*time.Second, "meshes", func() bool {
		for _, s := range svcs {
			info := s.Topics()[0]
			if info.Mesh < min(3, info.Peers) || info.Peers == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond)

	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var pubTime time.Duration
	for range b.N {
		rec.reset()
		pubTime += publishOpenLoop(b, topics, rate)
		// Drain: wait for every delivery, giving up only when none has
		// arrived for 5 s (so a backlog still in queues is waited for, and
		// what is missing at the end is really lost).
		want := benchMessages * (len(hs) - 1)
		last, lastChange := rec.delivered(), time.Now()
		for last < want && time.Since(lastChange) < 5*time.Second {
			time.Sleep(20 * time.Millisecond)
			if n := rec.delivered(); n != last {
				last, lastChange = n, time.Now()
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0

	var drops, rejected uint64
	for _, s := range svcs {
		drops += s.Topics()[0].Dropped
		rejected += s.Topics()[0].Rejected
	}
	want := benchMessages * (len(hs) - 1)
	lat := rec.latencies()
	b.ReportMetric(0, "ns/op")
	rec.mu.Lock()
	total := rec.total
	rec.mu.Unlock()
	b.ReportMetric(100*float64(total)/float64(want*b.N), "delivered_%")
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99_ms")
	b.ReportMetric(ms(percentile(lat, 1)), "max_ms")
	// Publishing is open-loop at rate; this is the rate at which the
	// publishers actually got their messages out.
	b.ReportMetric(float64(benchMessages*b.N)/pubTime.Seconds(), "published_msgs/s")
	b.ReportMetric(float64(drops)/float64(b.N), "drops/op")
	// CPU the whole process spent per round (all 50 nodes): against the
	// machine's cores, this says whether the round is CPU-bound.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu_s/op")
	b.ReportMetric(float64(rejected)/float64(b.N), "rejected/op")
}

// publishOpenLoop schedules message seq at start + seq/rate on node
// seq%len(topics). Each node publishes its share from its own goroutine,
// as independent publishers would, and the timestamp in the payload is the
// scheduled time: a publisher that falls behind shows up as latency rather
// than as a lower rate (no coordinated omission). It returns how long the
// last publish took to complete after start.
func publishOpenLoop(b *testing.B, topics []*Topic, rate int) time.Duration {
	type job struct {
		seq int
		at  time.Time
	}
	queues := make([]chan job, len(topics))
	var g sync.WaitGroup
	errs := make(chan error, len(topics))
	for i := range topics {
		queues[i] = make(chan job, benchMessages)
		g.Add(1)
		go func() {
			defer g.Done()
			for j := range queues[i] {
				payload := make([]byte, benchPayload)
				binary.BigEndian.PutUint64(payload, uint64(j.seq))
				binary.BigEndian.PutUint64(payload[8:], uint64(j.at.UnixNano()))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := topics[i].Publish(ctx, payload)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("publish %d: %w", j.seq, err)
					return
				}
			}
		}()
	}
	start := time.Now()
	for seq := range benchMessages {
		at := start.Add(time.Duration(seq) * time.Second / time.Duration(rate))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		queues[seq%len(queues)] <- job{seq, at}
	}
	for _, q := range queues {
		close(q)
	}
	g.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return elapsed
}

// connectRandomGraph connects hs in a ring (so the graph is connected) and
// adds random edges until the average degree is degree.
func connectRandomGraph(tb testing.TB, mn mocknet.Mocknet, hs []host.Host, degree int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	type edge struct{ a, b int }
	edges := make(map[edge]bool)
	add := func(a, b int) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if edges[edge{a, b}] {
			return
		}
		edges[edge{a, b}] = true
		connect(tb, mn, hs[a], hs[b])
	}
	for i := range hs {
		add(i, (i+1)%len(hs))
	}
	for len(edges) < len(hs)*degree/2 {
		add(rng.IntN(len(hs)), rng.IntN(len(hs)))
	}
}

// recorder collects each node's first receipt of each message.
type recorder struct {
	mu    sync.Mutex
	seen  [][]bool
	lat   []time.Duration
	count int // this round
	total int // all rounds
}

func newRecorder(nodes, msgs int) *recorder {
	r := &recorder{seen: make([][]bool, nodes)}
	for i := range r.seen {
		r.seen[i] = make([]bool, msgs)
	}
	return r
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		clear(s)
	}
	r.count = 0
}

func (r *recorder) add(node, seq int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < 0 || seq >= len(r.seen[node]) || r.seen[node][seq] {
		return
	}
	r.seen[node][seq] = true
	r.count++
	r.total++
	r.lat = append(r.lat, d)
}

func (r *recorder) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

func (r *recorder) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.lat)
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuTime is the CPU time (user + system) this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
