package e2e

// Shared machinery of the hostile-peer suite (hostile_test.go): a victim
// daemon process with an honest request handler, attackers that are plain
// libp2p hosts speaking warren's wire protocols by hand, an honest prober
// measuring request latency, and a watcher sampling the daemon's RSS, file
// descriptors, goroutines and log lines while an attack runs.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/msg"
)

// Bounds every attack must stay under (see docs/security.md, "How it is tested"). They are
// generous for a healthy daemon on a shared 2-core machine and far below
// what the unhardened daemon reached in each attack.
const (
	// hostileRSSGrowth: peak VmRSS during the attack minus the pre-attack
	// baseline.
	hostileRSSGrowth = 64 << 20
	// hostileFDGrowth: open file descriptors over the baseline. Attacks run
	// over one connection (churn: a few at a time), so fds barely move.
	hostileFDGrowth = 64
	// hostileGoroutineGrowth: goroutines over the baseline. The request
	// flood legitimately holds ~200 streams (one reader goroutine each) plus
	// the handlers; an idle-stream flood reached +5,000 before hardening.
	hostileGoroutineGrowth = 500
	// hostileLogLines: daemon log lines per 10 s of attack.
	hostileLogLines = 20
	// hostileP99: 99th percentile of the honest peer's request latency.
	hostileP99 = 200 * time.Millisecond
	// hostileProbeTimeout: a probe that takes longer counts as this long.
	hostileProbeTimeout = 2 * time.Second
	// hostileProbes bounds the honest requests of one attack, sent one at a
	// time every hostileProbeEvery while the attack runs.
	hostileProbes     = 200
	hostileProbeEvery = 30 * time.Millisecond
	// hostileAttack is how long each attack runs; hostileTail is how long
	// sampling goes on after it (memory and log lines may peak late).
	hostileAttack = 6 * time.Second
	hostileTail   = 1500 * time.Millisecond
	// hostileSample is the sampling interval of RSS and fds; goroutines
	// (a profile over the API) are sampled every fourth time.
	hostileSample = 100 * time.Millisecond
)

// echoType is the request type the victim answers (warren respond --echo).
const echoType = "hostile.echo"

// victim is the daemon under attack, with `warren respond hostile.echo
// --echo` answering requests on it.
type victim struct {
	*daemon
	t       *testing.T
	pid     int
	network string
	addr    peer.AddrInfo
	api     *http.Client
}

// startVictim starts a daemon on a new test-profile repo after applying the
// config edits (pairs for setConfig) and registers the echo responder.
func startVictim(t *testing.T, edits ...string) *victim {
	t.Helper()
	if raceEnabled {
		t.Skip("hostile bounds are for a normal build: the race detector multiplies memory and CPU")
	}
	repo := newRepo(t)
	if len(edits) > 0 {
		setConfig(t, repo, edits...)
	}
	b, err := os.ReadFile(filepath.Join(repo, config.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, repo)
	v := &victim{daemon: d, t: t, pid: d.cmd.Process.Pid, network: cfg.Network}
	ai, err := peer.AddrInfoFromString(d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	v.addr = *ai
	sock := filepath.Join(repo, config.APISocket)
	v.api = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}, Timeout: 10 * time.Second}
	t.Cleanup(v.api.CloseIdleConnections)
	startCLI(t, repo, nil, "respond", echoType, "--echo", "--parallel", "16")
	waitHandler(t, repo, echoType)
	return v
}

func (v *victim) msgProto() protocol.ID { return msg.ProtocolID(v.network) }

// gossipProto is the GossipSub v1.1 protocol of the victim's network.
func (v *victim) gossipProto() protocol.ID {
	return protocol.ID("/warren/" + v.network + "/meshsub/1.1.0")
}

// topicName is the pubsub topic string of a warren topic name.
func (v *victim) topicName(name string) string { return "/warren/" + v.network + "/topic/" + name }

// sample is one measurement of the daemon process.
type sample struct {
	rss        int64 // bytes
	fds        int
	goroutines int // -1: not measured in this sample
}

func (v *victim) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", v.pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func (v *victim) fds() int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", v.pid))
	if err != nil {
		return 0
	}
	return len(es)
}

// goroutines reads the first line of the daemon's goroutine profile,
// "goroutine profile: total N"; -1 if the API does not answer in time.
func (v *victim) goroutines() int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://warren/debug/pprof/goroutine?debug=1", nil)
	resp, err := v.api.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total ")))
	if err != nil {
		return -1
	}
	return n
}

func (v *victim) measure(withGoroutines bool) sample {
	s := sample{rss: v.rss(), fds: v.fds(), goroutines: -1}
	if withGoroutines {
		s.goroutines = v.goroutines()
	}
	return s
}

// logLines returns how many lines the daemon has printed so far.
func (v *victim) logLines() int { return strings.Count(v.Output(), "\n") }

// baseline waits for the daemon to settle and returns the median of a few
// samples (goroutines: the smallest, idle goroutines only come and go).
func (v *victim) baseline() sample {
	time.Sleep(500 * time.Millisecond)
	var rss, fds, gs []int
	for range 5 {
		s := v.measure(true)
		rss, fds, gs = append(rss, int(s.rss)), append(fds, s.fds), append(gs, s.goroutines)
		time.Sleep(hostileSample)
	}
	slices.Sort(rss)
	slices.Sort(fds)
	slices.Sort(gs)
	return sample{rss: int64(rss[2]), fds: fds[2], goroutines: gs[0]}
}

// limits are the bounds one attack is checked against; the zero value of a
// field means the suite's default.
type limits struct {
	rss        int64
	fds        int
	goroutines int
	logLines   int           // per 10 s
	attack     time.Duration // default hostileAttack
	// settled: also require goroutines and fds to be back within these of
	// the baseline hostileTail after the attack (0: not checked).
	settledGoroutines, settledFDs int
}

func (l limits) withDefaults() limits {
	if l.rss == 0 {
		l.rss = hostileRSSGrowth
	}
	if l.fds == 0 {
		l.fds = hostileFDGrowth
	}
	if l.goroutines == 0 {
		l.goroutines = hostileGoroutineGrowth
	}
	if l.logLines == 0 {
		l.logLines = hostileLogLines
	}
	if l.attack == 0 {
		l.attack = hostileAttack
	}
	return l
}

// report is what one attack did to the victim.
type report struct {
	name                 string
	base, peak, after    sample
	window               time.Duration
	lines                int
	newLines             []string
	latencies            []time.Duration
	probeErrs            []string
	p50, p99             time.Duration
	attackStats          string
	probeCount, timeouts int
}

// underAttack measures the victim, then runs attack (whose ctx ends after
// l.attack) while sampling the daemon and probing it with honest
// requests, and checks the result against l. attack must return soon after
// its ctx ends; it returns a line describing what it did.
func (v *victim) underAttack(t *testing.T, name string, l limits, attack func(ctx context.Context) string) report {
	t.Helper()
	l = l.withDefaults()
	pr := newProber(t, v)
	base := v.baseline()
	baseLines := v.logLines()
	r := report{name: name, base: base, peak: base}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Go(func() {
		tick := time.NewTicker(hostileSample)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			s := v.measure(i%4 == 0)
			mu.Lock()
			r.peak.rss = max(r.peak.rss, s.rss)
			r.peak.fds = max(r.peak.fds, s.fds)
			r.peak.goroutines = max(r.peak.goroutines, s.goroutines)
			mu.Unlock()
		}
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.attack)
	wg.Go(func() { pr.run(ctx) })
	r.attackStats = attack(ctx)
	cancel()
	time.Sleep(hostileTail)
	close(stop)
	wg.Wait()
	r.window = time.Since(start)
	r.after = v.measure(true)
	mu.Lock()
	r.peak.goroutines = max(r.peak.goroutines, r.after.goroutines)
	mu.Unlock()
	out := v.Output()
	all := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	r.lines = v.logLines() - baseLines
	if r.lines > 0 && r.lines <= len(all) {
		r.newLines = all[len(all)-r.lines:]
	}
	r.latencies, r.probeErrs, r.timeouts = pr.results()
	r.probeCount = len(r.latencies)
	r.p50, r.p99 = percentile(r.latencies, 50), percentile(r.latencies, 99)
	r.check(t, l)
	return r
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// check fails t for every bound r exceeds, with the figures.
func (r report) check(t *testing.T, l limits) {
	t.Helper()
	t.Logf("%s: attack: %s", r.name, r.attackStats)
	t.Logf("%s: RSS baseline %s peak %s (+%s, bound +%s); fds %d -> peak %d (bound +%d); goroutines %d -> peak %d, %d after (bound +%d); %d log lines in %s (bound %d per 10 s)",
		r.name, mib(r.base.rss), mib(r.peak.rss), mib(r.peak.rss-r.base.rss), mib(l.rss),
		r.base.fds, r.peak.fds, l.fds, r.base.goroutines, r.peak.goroutines, r.after.goroutines, l.goroutines,
		r.lines, r.window.Round(100*time.Millisecond), l.logLines)
	t.Logf("%s: honest requests: %d, p50 %s, p99 %s (bound %s), %d failed or over %s",
		r.name, r.probeCount, r.p50, r.p99, hostileP99, r.timeouts, hostileProbeTimeout)
	if g := r.peak.rss - r.base.rss; g >= l.rss {
		t.Errorf("%s: daemon RSS grew by %s: baseline %s, peak %s; bound: less than +%s", r.name, mib(g), mib(r.base.rss), mib(r.peak.rss), mib(l.rss))
	}
	if r.peak.fds-r.base.fds >= l.fds {
		t.Errorf("%s: daemon fds grew by %d: baseline %d, peak %d; bound: less than +%d", r.name, r.peak.fds-r.base.fds, r.base.fds, r.peak.fds, l.fds)
	}
	if r.peak.goroutines-r.base.goroutines >= l.goroutines {
		t.Errorf("%s: daemon goroutines grew by %d: baseline %d, peak %d; bound: less than +%d", r.name, r.peak.goroutines-r.base.goroutines, r.base.goroutines, r.peak.goroutines, l.goroutines)
	}
	if l.settledGoroutines > 0 && (r.after.goroutines < 0 || r.after.goroutines-r.base.goroutines >= l.settledGoroutines) {
		t.Errorf("%s: %s after the attack the daemon still runs %d goroutines: baseline %d; bound: less than +%d", r.name, hostileTail, r.after.goroutines, r.base.goroutines, l.settledGoroutines)
	}
	if l.settledFDs > 0 && r.after.fds-r.base.fds >= l.settledFDs {
		t.Errorf("%s: %s after the attack the daemon still has %d fds open: baseline %d; bound: less than +%d", r.name, hostileTail, r.after.fds, r.base.fds, l.settledFDs)
	}
	// Lines per 10 s; a window shorter than 10 s counts as 10 s.
	if rate := float64(r.lines) * float64(10*time.Second) / float64(max(r.window, 10*time.Second)); rate >= float64(l.logLines) {
		t.Errorf("%s: daemon logged %d lines in %s (%.0f per 10 s); bound: fewer than %d per 10 s. Distinct messages:\n%s",
			r.name, r.lines, r.window.Round(100*time.Millisecond), rate, l.logLines, distinctLines(r.newLines, 8))
	}
	if r.probeCount < 10 && r.timeouts == 0 {
		t.Errorf("%s: only %d honest requests were made during the attack", r.name, r.probeCount)
	}
	if r.p99 >= hostileP99 {
		t.Errorf("%s: honest requests p99 %s (p50 %s, %d requests, %d failed or over %s); bound: under %s; first errors: %q",
			r.name, r.p99, r.p50, r.probeCount, r.timeouts, hostileProbeTimeout, hostileP99, first(r.probeErrs, 3))
	}
}

// distinctLines lists up to n distinct log messages (the msg= part of
// slog's text lines) with their counts.
func distinctLines(lines []string, n int) string {
	counts := map[string]int{}
	var order []string
	for _, l := range lines {
		key := l
		if i := strings.Index(l, "msg="); i >= 0 {
			key = l[i:]
			if j := strings.Index(key, " "); j > 0 && !strings.HasPrefix(key, `msg="`) {
				key = key[:j]
			} else if strings.HasPrefix(key, `msg="`) {
				if j := strings.Index(key[5:], `"`); j >= 0 {
					key = key[:5+j+1]
				}
			}
		}
		if counts[key] == 0 {
			order = append(order, key)
		}
		counts[key]++
	}
	var b strings.Builder
	for i, k := range order {
		if i == n {
			fmt.Fprintf(&b, "  ... %d more kinds\n", len(order)-n)
			break
		}
		fmt.Fprintf(&b, "  %6d x %s\n", counts[k], k)
	}
	return b.String()
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// percentile returns the nearest-rank p-th percentile.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	k := (p*len(s) + 99) / 100
	return s[max(0, k-1)]
}

// prober is an honest peer: a libp2p host with warren's msg service that
// requests echoType from the victim, one request at a time.
type prober struct {
	t      *testing.T
	v      *victim
	svc    *msg.Service
	mu     sync.Mutex
	lat    []time.Duration
	errs   []string
	failed int
}

func newProber(t *testing.T, v *victim) *prober {
	t.Helper()
	h := newHost(t)
	connect(t, h, v)
	svc, err := msg.New(context.Background(), h, msg.Options{Network: v.network})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	p := &prober{t: t, v: v, svc: svc}
	// Warm up: the reply stream is open and the responder answers.
	for i := range 3 {
		if _, err := p.once(context.Background(), i); err != nil {
			t.Fatalf("honest request before the attack: %v", err)
		}
	}
	return p
}

func (p *prober) once(ctx context.Context, i int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, hostileProbeTimeout)
	defer cancel()
	payload := []byte("probe-" + strconv.Itoa(i))
	start := time.Now()
	m, err := p.svc.Request(ctx, p.v.addr.ID, echoType, payload)
	d := time.Since(start)
	if err == nil && string(m.Payload) != string(payload) {
		err = fmt.Errorf("echo of %q came back as %q", payload, m.Payload)
	}
	return d, err
}

// run probes every hostileProbeEvery until ctx ends or hostileProbes were
// sent. A probe's own timeout does not depend on ctx: the last one started
// is measured to its end.
func (p *prober) run(ctx context.Context) {
	tick := time.NewTicker(hostileProbeEvery)
	defer tick.Stop()
	for i := range hostileProbes {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d, err := p.once(context.Background(), i)
		p.mu.Lock()
		if err != nil || d > hostileProbeTimeout {
			d = max(d, hostileProbeTimeout)
			p.failed++
			if err != nil {
				p.errs = append(p.errs, err.Error())
			}
		}
		p.lat = append(p.lat, d)
		p.mu.Unlock()
	}
}

func (p *prober) results() ([]time.Duration, []string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lat), slices.Clone(p.errs), p.failed
}

// newHost is a plain libp2p host on 127.0.0.1 with no resource limits of its
// own (an attacker does not limit itself), closed at the end of the test.
func newHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
	}, opts...)...)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// connect connects h to the victim and waits until identify has told h the
// victim's protocols, so NewStream negotiates lazily (no round trip).
func connect(t *testing.T, h host.Host, v *victim) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, v.addr); err != nil {
		t.Fatalf("connect to the victim: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if ps, _ := h.Peerstore().SupportsProtocols(v.addr.ID, v.msgProto()); len(ps) == 0 {
			return fmt.Errorf("identify has not reported %s of the victim yet", v.msgProto())
		}
		return nil
	})
}

// newAttacker is a host connected to the victim.
func newAttacker(t *testing.T, v *victim, opts ...libp2p.Option) host.Host {
	t.Helper()
	h := newHost(t, opts...)
	connect(t, h, v)
	return h
}

// holdStreams is a stream handler that accepts streams and never reads
// them; release resets them all.
type holdStreams struct {
	mu       sync.Mutex
	streams  []network.Stream
	accepted chan struct{}
}

func newHoldStreams() *holdStreams { return &holdStreams{accepted: make(chan struct{}, 1)} }

func (hs *holdStreams) handle(s network.Stream) {
	hs.mu.Lock()
	hs.streams = append(hs.streams, s)
	hs.mu.Unlock()
	select {
	case hs.accepted <- struct{}{}:
	default:
	}
}

func (hs *holdStreams) release() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, s := range hs.streams {
		_ = s.Reset()
	}
	hs.streams = nil
}

// discard is a stream handler that reads and drops everything.
func discard(s network.Stream) {
	_, _ = io.Copy(io.Discard, s)
	_ = s.Reset()
}

// Wire format of msg frames, written by hand from msg/codec.go (package
// msg exports no encoder): an unsigned varint length, then a protobuf
// Envelope {1 type, 2 id (16 bytes), 3 payload, 4 sent (fixed64), 5 flags,
// 6 corr, 7 timeout_ms}. Flags: 1 request, 2 response, 4 error.
const (
	flagRequest = 1
)

var frameIDs atomic.Uint64

// msgFrame appends one length-prefixed envelope to dst.
func msgFrame(dst []byte, typ string, payload []byte, flags, corr, timeoutMs uint64) []byte {
	var body []byte
	body = protowire.AppendTag(body, 4, protowire.Fixed64Type)
	body = protowire.AppendFixed64(body, uint64(time.Now().UnixNano()))
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendString(body, typ)
	var id [16]byte
	copy(id[:8], "hostile!")
	binary.BigEndian.PutUint64(id[8:], frameIDs.Add(1))
	body = protowire.AppendTag(body, 2, protowire.BytesType)
	body = protowire.AppendBytes(body, id[:])
	body = protowire.AppendTag(body, 3, protowire.BytesType)
	body = protowire.AppendBytes(body, payload)
	if flags != 0 {
		body = protowire.AppendTag(body, 5, protowire.VarintType)
		body = protowire.AppendVarint(body, flags)
	}
	if corr != 0 {
		body = protowire.AppendTag(body, 6, protowire.VarintType)
		body = protowire.AppendVarint(body, corr)
	}
	if timeoutMs != 0 {
		body = protowire.AppendTag(body, 7, protowire.VarintType)
		body = protowire.AppendVarint(body, timeoutMs)
	}
	return rawFrame(dst, body)
}

// rawFrame appends body with its varint length prefix.
func rawFrame(dst, body []byte) []byte {
	dst = protowire.AppendVarint(dst, uint64(len(body)))
	return append(dst, body...)
}

// randomPeer returns the ID of a key nobody runs.
func randomPeer(t *testing.T) peer.ID {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// addrOf returns a multiaddr string of a TCP listener.
func addrOf(t *testing.T, a net.Addr) string {
	t.Helper()
	ta := a.(*net.TCPAddr)
	m, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/%s/tcp/%d", ta.IP, ta.Port))
	if err != nil {
		t.Fatal(err)
	}
	return m.String()
}
