package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/ratelog"

	"github.com/warren-p2p/warren/internal/testutil"
)

// logRecorder is a slog.Handler keeping every record at min or above.
type logRecorder struct {
	mu   *sync.Mutex
	recs *[]slog.Record
	min  slog.Level
}

func newLogRecorder(min slog.Level) (*slog.Logger, logRecorder) {
	r := logRecorder{mu: new(sync.Mutex), recs: new([]slog.Record), min: min}
	return slog.New(r), r
}

func (r logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.min }
func (r logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.recs = append(*r.recs, rec.Clone())
	return nil
}
func (r logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r logRecorder) WithGroup(string) slog.Handler      { return r }

// count reports the records at level whose message contains substr.
func (r logRecorder) count(level slog.Level, substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range *r.recs {
		if rec.Level == level && strings.Contains(rec.Message, substr) {
			n++
		}
	}
	return n
}

// failingDiscovery fails every advertisement, as a DHT with no peers does.
type failingDiscovery struct{}

func (failingDiscovery) Advertise(context.Context, string, ...discovery.Option) (time.Duration, error) {
	return 0, errors.New("failed to find any peer in table")
}

func (failingDiscovery) FindPeers(context.Context, string, ...discovery.Option) (<-chan peer.AddrInfo, error) {
	ch := make(chan peer.AddrInfo)
	close(ch)
	return ch, nil
}

// A node alone, whose every advertisement fails, warns once, not once per
// topic and retry; pubsub does not add its own warning; every failure is
// counted.
func TestAdvertiseFailureWarnsOnce(t *testing.T) {
	_, hs := newMocknet(t, 1)
	log, rec := newLogRecorder(slog.LevelDebug)
	reg := prometheus.NewRegistry()
	s := newService(t, hs[0], Options{Discovery: failingDiscovery{}, Logger: log, Registerer: reg})
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, err := s.Join(name); err != nil {
			t.Fatal(err)
		}
	}
	// A failure is counted before it is logged: wait for both.
	// The topics advertise concurrently: the first failure's warning may
	// be logged after the later ones' debug lines.
	testutil.Eventually(t, 5*time.Second, "four failed advertisements, logged", func() bool {
		return s.AdvertiseFailures() >= 4 && rec.count(slog.LevelDebug, "advertising topic failed") >= 3 &&
			rec.count(slog.LevelWarn, "advertis") >= 1
	})
	if n := rec.count(slog.LevelWarn, "advertis"); n != 1 {
		t.Fatalf("%d warnings about advertising after %d failures; expected 1", n, s.AdvertiseFailures())
	}
	if n := rec.count(slog.LevelWarn, "rendezvous"); n != 0 {
		t.Fatalf("pubsub warned %d times about the rendezvous; expected 0", n)
	}
	if n := rec.count(slog.LevelDebug, "advertising topic failed"); n < 3 {
		t.Fatalf("%d debug lines for the later failures; expected at least 3", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "warren_gossip_advertise_failures_total" {
			found = mf.GetMetric()[0].GetCounter().GetValue() >= 4
		}
	}
	if !found {
		t.Fatal("warren_gossip_advertise_failures_total missing or below 4")
	}
}

// flakyDiscovery fails while fail is set.
type flakyDiscovery struct {
	failingDiscovery
	fail bool
}

func (d *flakyDiscovery) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	if d.fail {
		return d.failingDiscovery.Advertise(ctx, ns, opts...)
	}
	return time.Hour, nil
}

// A success ends an outage: the next outage warns once again. pubsub gets
// a retry delay and no error, so it has nothing to log.
func TestAdvertiseOutagesWarnOnceEach(t *testing.T) {
	log, rec := newLogRecorder(slog.LevelDebug)
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &flakyDiscovery{fail: true}
	r := &rendezvous{d: d, log: log, failures: m.advertiseFailures}
	ctx := context.Background()
	advertise := func() {
		t.Helper()
		ttl, err := r.Advertise(ctx, "floodsub:/warren/test/topic/x")
		if err != nil || ttl <= 0 {
			t.Fatalf("Advertise = %s, %v; expected a retry delay and no error", ttl, err)
		}
	}
	for range 5 {
		advertise()
	}
	d.fail = false
	advertise()
	d.fail = true
	for range 5 {
		advertise()
	}
	if n := rec.count(slog.LevelWarn, "advertising topic failed"); n != 2 {
		t.Fatalf("%d warnings for two outages of 5 failures; expected 2", n)
	}
	if n := rec.count(slog.LevelInfo, "works again"); n != 1 {
		t.Fatalf("%d recovery lines; expected 1", n)
	}
	if r.failed.Load() != 10 {
		t.Fatalf("failures = %d; expected 10", r.failed.Load())
	}
}

// pubsub's Info and Warn lines (which peers can cause) are rate-limited by
// message; its Debug lines pass through.
func TestPubsubLogIsRateLimited(t *testing.T) {
	log, rec := newLogRecorder(slog.LevelDebug)
	rl := ratelog.New(log, time.Hour)
	ps := slog.New(newRateHandler(log, rl)).With("system", "pubsub")
	for range 100 {
		ps.Warn("new stream for unknown peer", "peer", "x")
		ps.Debug("error reading rpc")
	}
	if n := rec.count(slog.LevelWarn, "new stream for unknown peer"); n != 1 {
		t.Fatalf("%d warnings for 100 of one kind; expected 1", n)
	}
	if n := rec.count(slog.LevelDebug, "error reading rpc"); n != 100 {
		t.Fatalf("%d debug lines; expected all 100", n)
	}
	_ = rl.Close()
	if n := rec.count(slog.LevelWarn, "99 more like this"); n != 1 {
		t.Fatalf("%d summaries; expected 1 counting the 99 held back", n)
	}
}

// Drops are caused by peers (slow readers, floods): their warning is
// rate-limited across topics, while every drop is still counted.
func TestDropWarningsAreRateLimited(t *testing.T) {
	log, rec := newLogRecorder(slog.LevelInfo)
	rl := ratelog.New(log, time.Hour)
	defer rl.Close()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	var stats []*topicStats
	for i := range 50 {
		stats = append(stats, newTopicStats(fmt.Sprintf("t%d", i), m, log, rl))
	}
	for _, st := range stats {
		st.addDropped(dropOutbound) // each topic's first drop
	}
	if n := rec.count(slog.LevelWarn, "messages dropped"); n != 1 {
		t.Fatalf("%d warnings for first drops on 50 topics; expected 1", n)
	}
	if got := stats[49].info(0).Dropped; got != 1 {
		t.Fatalf("topic t49 counted %d drops; expected 1", got)
	}
}
