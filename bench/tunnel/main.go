// Command tunnel benchmarks warren tunnels against plain TCP and ssh -L.
//
// It builds the warren binary (or uses -bin), starts two daemons as separate
// processes on test-profile repos in a temporary directory, sets up a
// forward→listen pair to a sink/echo server (a child process of this
// program), and measures through plain TCP, the warren tunnel and — when ssh
// and sshd are installed (bench/tunnel/setup.sh) — ssh -L with
// aes128-gcm@openssh.com to an sshd it starts on a loopback port:
//
//   - bulk throughput (-bulk bytes one way, -bulk-runs runs, median),
//   - 1-byte round-trip time p50/p99 (-rtt round trips, -rtt-runs runs),
//   - memory per idle tunnelled connection (-idle connections held open, RSS
//     delta of each daemon / count, on fresh daemons each -mem-runs run), which
//     also checks that the defaults carry that many concurrent connections
//     (a byte is echoed on each).
//
// Not part of CI. Usage: go run ./bench/tunnel [flags]; see RESULTS.md.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/daemontest"
)

type options struct {
	bin        string
	compareBin string
	bulk       int64
	bulkRuns   int
	rtt        int
	rttRuns    int
	idle       int
	memRuns    int
	only       string
	security   string
	transport  string
	ssh        bool
	keep       bool
	procs      int
}

func main() {
	var o options
	serve := flag.Bool("serve", false, "internal: run the sink/echo server and print its address")
	flag.StringVar(&o.bin, "bin", "", "warren binary to use (default: build ./cmd/warren into the temp dir)")
	flag.StringVar(&o.compareBin, "compare-bin", "", "a second warren binary, measured as path \"warren-b\" interleaved with the first (A/B in one run)")
	flag.Int64Var(&o.bulk, "bulk", 1<<30, "bytes sent one way per bulk run")
	flag.IntVar(&o.bulkRuns, "bulk-runs", 5, "bulk runs per path")
	flag.IntVar(&o.rtt, "rtt", 2000, "1-byte round trips per RTT run")
	flag.IntVar(&o.rttRuns, "rtt-runs", 3, "RTT runs per path")
	flag.IntVar(&o.idle, "idle", 10000, "idle tunnelled connections held open for the memory/scale check")
	flag.IntVar(&o.memRuns, "mem-runs", 3, "memory runs, each on a fresh daemon pair")
	flag.StringVar(&o.only, "only", "bulk,rtt,mem", "comma-separated sections to run: bulk, rtt, mem")
	flag.StringVar(&o.security, "security", "", "override swarm.security in both repos, e.g. tls,noise (default: the profile's)")
	flag.StringVar(&o.transport, "transport", "tcp", "libp2p transport between the daemons: tcp or quic")
	flag.BoolVar(&o.ssh, "ssh", true, "compare with ssh -L when ssh and sshd are installed")
	flag.IntVar(&o.procs, "daemon-gomaxprocs", 0, "run the daemons with GOMAXPROCS=N (0: Go's default, the CPU count)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (repos, logs)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *serve {
		err = runServer(ctx, os.Stdout)
	} else {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/tunnel:", err)
		os.Exit(1)
	}
}

func (o options) want(section string) bool {
	return slices.Contains(strings.Split(o.only, ","), section)
}

func run(ctx context.Context, o options) error {
	switch o.transport {
	case "tcp", "quic":
	default:
		return fmt.Errorf("-transport %q: expected tcp or quic", o.transport)
	}
	raiseFDLimit()
	work, err := os.MkdirTemp("", "wbt")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	if o.keep {
		fmt.Println("temp dir:", work)
	} else {
		defer os.RemoveAll(work)
	}
	if o.bin == "" {
		if o.bin, err = daemontest.Build(ctx, work, false); err != nil {
			return err
		}
	}
	fmt.Printf("warren tunnel bench: %s, CPUs=%d, transport=%s, security=%s, daemon GOMAXPROCS=%s\n",
		time.Now().Format(time.RFC3339), runtime.NumCPU(), o.transport, orDefault(o.security, "profile default (tls,noise)"), orDefault(strconv.Itoa(o.procs), "default"))

	srv, err := startServer(ctx, work)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Println("server (child process):", srv.addr)

	if o.want("bulk") || o.want("rtt") {
		if err := runSpeed(ctx, o, work, srv.addr); err != nil {
			return err
		}
	}
	if o.want("mem") {
		if err := runMem(ctx, o, work, srv.addr); err != nil {
			return err
		}
	}
	return nil
}

// pathResult are one path's measurements.
type pathResult struct {
	name     string
	bulk     []float64 // MiB/s per run
	p50, p99 []float64 // µs per run
}

func runSpeed(ctx context.Context, o options, work, server string) error {
	pair, err := startPair(ctx, o, filepath.Join(work, "speed"))
	if err != nil {
		return err
	}
	defer pair.stop()
	fwd, err := pair.tunnel(ctx, "/x/bench", server)
	if err != nil {
		return err
	}
	paths := []struct{ name, addr string }{{"tcp", server}, {"warren", fwd}}
	pairs := map[string]*daemonPair{"warren": pair}
	if o.compareBin != "" {
		ob := o
		ob.bin = o.compareBin
		pairB, err := startPair(ctx, ob, filepath.Join(work, "speed-b"))
		if err != nil {
			return fmt.Errorf("-compare-bin: %w", err)
		}
		defer pairB.stop()
		fwdB, err := pairB.tunnel(ctx, "/x/bench", server)
		if err != nil {
			return fmt.Errorf("-compare-bin: %w", err)
		}
		pairs["warren-b"] = pairB
		paths = append(paths, struct{ name, addr string }{"warren-b", fwdB})
	}
	var sshPIDs []int // ssh client and sshd: their CPU (with sshd's session children) is ssh -L's cost
	if o.ssh {
		sshAddr, pids, stopSSH, err := startSSH(ctx, filepath.Join(work, "ssh"), server)
		if err != nil {
			fmt.Println("ssh -L: skipped:", err)
		} else {
			defer stopSSH()
			sshPIDs = pids
			paths = append(paths, struct{ name, addr string }{"ssh -L", sshAddr})
		}
	}
	results := make([]*pathResult, len(paths))
	for i, p := range paths {
		results[i] = &pathResult{name: p.name}
	}
	cpuPerGiB := map[string][]float64{}
	var sshCPUPerGiB []float64
	// Interleave the paths run by run so drifts in machine load hit all alike.
	if o.want("bulk") {
		for i, p := range paths { // warm-up
			if _, err := bulk(ctx, p.addr, min(o.bulk, 64<<20)); err != nil {
				return fmt.Errorf("bulk warm-up via %s: %w", paths[i].name, err)
			}
		}
		for run := range o.bulkRuns {
			for i, p := range paths {
				pr := pairs[p.name]
				var c0 cpuTime
				var ca, cb float64
				if pr != nil {
					c0 = treeCPU(pr.a.pid, pr.b.pid)
					ca, cb = cpuSeconds(pr.a.pid), cpuSeconds(pr.b.pid)
				}
				cs := treeCPU(sshPIDs...)
				mibs, err := bulk(ctx, p.addr, o.bulk)
				if err != nil {
					return fmt.Errorf("bulk run %d via %s: %w", run, p.name, err)
				}
				results[i].bulk = append(results[i].bulk, mibs)
				extra := ""
				if pr != nil {
					// CPU per GiB is robust to other load on a shared machine.
					gib := float64(o.bulk) / (1 << 30)
					da, db := (cpuSeconds(pr.a.pid)-ca)/gib, (cpuSeconds(pr.b.pid)-cb)/gib
					cpuPerGiB[p.name] = append(cpuPerGiB[p.name], da+db)
					split := treeCPU(pr.a.pid, pr.b.pid).sub(c0).per(gib)
					extra = fmt.Sprintf("  daemon CPU per GiB: listen %.2fs + forward %.2fs (user %.2fs, kernel %.2fs)", da, db, split.user, split.sys)
				}
				if p.name == "ssh -L" {
					c := treeCPU(sshPIDs...).sub(cs).per(float64(o.bulk) / (1 << 30))
					sshCPUPerGiB = append(sshCPUPerGiB, c.total())
					extra = fmt.Sprintf("  ssh+sshd CPU per GiB: %.2fs (user %.2fs, kernel %.2fs)", c.total(), c.user, c.sys)
				}
				fmt.Printf("  bulk  %-7s run %d: %8.1f MiB/s%s\n", p.name, run+1, mibs, extra)
			}
		}
	}
	if o.want("rtt") {
		for run := range o.rttRuns {
			for i, p := range paths {
				p50, p99, err := rtt(ctx, p.addr, o.rtt)
				if err != nil {
					return fmt.Errorf("rtt run %d via %s: %w", run, p.name, err)
				}
				results[i].p50 = append(results[i].p50, p50)
				results[i].p99 = append(results[i].p99, p99)
				fmt.Printf("  rtt   %-7s run %d: p50 %7.1f µs  p99 %7.1f µs\n", p.name, run+1, p50, p99)
			}
		}
	}
	fmt.Printf("\nmedians (bulk: %d MiB one way x %d runs; rtt: %d round trips x %d runs)\n",
		o.bulk>>20, o.bulkRuns, o.rtt, o.rttRuns)
	fmt.Printf("%-8s %12s %12s %12s\n", "path", "bulk MiB/s", "rtt p50 µs", "rtt p99 µs")
	byName := map[string]*pathResult{}
	for _, r := range results {
		byName[r.name] = r
		fmt.Printf("%-8s %12.1f %12.1f %12.1f\n", r.name, median(r.bulk), median(r.p50), median(r.p99))
	}
	w := byName["warren"]
	ratio := func(label string, a, b *pathResult) {
		if b == nil {
			return
		}
		fmt.Printf("%s/%-6s bulk %.2fx   rtt p50 %.2fx   rtt p99 %.2fx\n", a.name, label,
			safeDiv(median(a.bulk), median(b.bulk)), safeDiv(median(a.p50), median(b.p50)), safeDiv(median(a.p99), median(b.p99)))
	}
	for _, name := range []string{"warren", "warren-b"} {
		if c := cpuPerGiB[name]; len(c) > 0 {
			fmt.Printf("%s daemons' CPU per GiB carried (both sides): median %.2f s\n", name, median(c))
		}
	}
	if len(sshCPUPerGiB) > 0 {
		fmt.Printf("ssh -L's CPU per GiB carried (ssh + sshd): median %.2f s; warren/ssh CPU per GiB %.2fx\n",
			median(sshCPUPerGiB), safeDiv(median(cpuPerGiB["warren"]), median(sshCPUPerGiB)))
	}
	if wb := byName["warren-b"]; wb != nil {
		fmt.Printf("warren-b/warren bulk %.2fx   rtt p50 %.2fx   CPU per GiB %.2fx\n",
			safeDiv(median(wb.bulk), median(w.bulk)), safeDiv(median(wb.p50), median(w.p50)),
			safeDiv(median(cpuPerGiB["warren-b"]), median(cpuPerGiB["warren"])))
		ratio("ssh", wb, byName["ssh -L"])
	}
	ratio("tcp", w, byName["tcp"])
	ratio("ssh", w, byName["ssh -L"])
	if s := byName["ssh -L"]; s != nil && len(w.bulk) > 0 {
		fmt.Printf("targets: bulk >= 1.10x ssh: %v; rtt p50 <= ssh: %v\n",
			median(w.bulk) >= 1.10*median(s.bulk), len(w.p50) > 0 && median(w.p50) <= median(s.p50))
	}
	return nil
}

// runMem opens o.idle connections through a fresh daemon pair, echoes a
// byte on each, and reports each daemon's RSS delta per connection.
func runMem(ctx context.Context, o options, work, server string) error {
	var perA, perB []float64
	for run := range o.memRuns {
		pair, err := startPair(ctx, o, filepath.Join(work, fmt.Sprintf("mem%d", run)))
		if err != nil {
			return err
		}
		a, b, err := memRun(ctx, o, pair, server)
		pair.stop()
		if err != nil {
			return fmt.Errorf("memory run %d: %w", run+1, err)
		}
		perA, perB = append(perA, a), append(perB, b)
	}
	fmt.Printf("\nidle connections: %d concurrent, all carried a byte each way (x %d runs)\n", o.idle, o.memRuns)
	fmt.Printf("memory per idle connection, median RSS delta: listen side %.1f KiB, forward side %.1f KiB (target <= 24 KiB each)\n",
		median(perA), median(perB))
	return nil
}

func memRun(ctx context.Context, o options, pair *daemonPair, server string) (perA, perB float64, err error) {
	fwd, err := pair.tunnel(ctx, "/x/idle", server)
	if err != nil {
		return 0, 0, err
	}
	// Warm up: a few connections so one-time allocations are in the baseline.
	warm, err := openIdle(ctx, fwd, 16)
	closeAll(warm)
	if err != nil {
		return 0, 0, fmt.Errorf("warm-up: %w", err)
	}
	if err := waitStreams(ctx, pair, 0); err != nil {
		return 0, 0, err
	}
	time.Sleep(time.Second)
	a0, b0 := rssKiB(pair.a.pid), rssKiB(pair.b.pid)
	start := time.Now()
	conns, err := openIdle(ctx, fwd, o.idle)
	defer closeAll(conns)
	if err != nil {
		return 0, 0, fmt.Errorf("%d of %d idle connections worked: %w", len(conns), o.idle, err)
	}
	opened := time.Since(start)
	if err := waitStreams(ctx, pair, o.idle); err != nil {
		return 0, 0, err
	}
	time.Sleep(2 * time.Second) // the stream->local copy drops its big buffer after 100 ms idle
	a1, b1 := rssKiB(pair.a.pid), rssKiB(pair.b.pid)
	perA = float64(a1-a0) / float64(o.idle)
	perB = float64(b1-b0) / float64(o.idle)
	fmt.Printf("  mem   %d connections opened and echoed in %v; RSS listen %d->%d KiB (%.1f KiB/conn), forward %d->%d KiB (%.1f KiB/conn)\n",
		o.idle, opened.Round(time.Millisecond), a0, a1, perA, b0, b1, perB)
	return perA, perB, nil
}

// openIdle opens n connections in mode 'i' and checks a byte is echoed on
// each; it returns the open ones.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := idleConn(ctx, addr, byte(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %w", i, err)
				}
				return
			}
			conns = append(conns, c)
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return conns, firstErr
}

func idleConn(ctx context.Context, addr string, b byte) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte{'i', b}); err != nil {
		c.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	var got [1]byte
	if _, err := io.ReadFull(c, got[:]); err != nil || got[0] != b {
		c.Close()
		return nil, fmt.Errorf("echo: got %v, %v", got, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

func waitStreams(ctx context.Context, p *daemonPair, want int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		na, errA := p.a.cl.TunnelStreams(ctx, client.TunnelListOptions{})
		nb, errB := p.b.cl.TunnelStreams(ctx, client.TunnelListOptions{})
		if err := errors.Join(errA, errB); err != nil {
			return fmt.Errorf("list streams: %w", err)
		}
		if len(na) == want && len(nb) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("streams: listen side %d, forward side %d, want %d", len(na), len(nb), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bulk sends n bytes in mode 's' and waits for the server's count.
func bulk(ctx context.Context, addr string, n int64) (float64, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(buf)
	start := time.Now()
	if _, err := c.Write([]byte{'s'}); err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		k := min(int64(len(buf)), left)
		if _, err := c.Write(buf[:k]); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		left -= k
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	var cnt [8]byte
	if _, err := io.ReadFull(c, cnt[:]); err != nil {
		return 0, fmt.Errorf("read count: %w", err)
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(cnt[:])); got != n {
		return 0, fmt.Errorf("server received %d bytes, sent %d", got, n)
	}
	return float64(n) / (1 << 20) / el.Seconds(), nil
}

// rtt measures n 1-byte round trips in mode 'e'; p50 and p99 in µs.
func rtt(ctx context.Context, addr string, n int) (p50, p99 float64, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := c.Write([]byte{'e'}); err != nil {
		return 0, 0, err
	}
	b := []byte{0}
	samples := make([]float64, 0, n)
	for i := range n + 100 { // 100 warm-up round trips
		start := time.Now()
		b[0] = byte(i)
		if _, err := c.Write(b); err != nil {
			return 0, 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, 0, err
		}
		if i >= 100 {
			samples = append(samples, float64(time.Since(start).Nanoseconds())/1e3)
		}
	}
	slices.Sort(samples)
	return samples[len(samples)/2], samples[len(samples)*99/100], nil
}

// --- daemons ---------------------------------------------------------------

type daemonProc struct {
	*daemontest.Daemon
	pid int
	id  string
	cl  *client.Client
}

type daemonPair struct{ a, b *daemonProc }

func startPair(ctx context.Context, o options, dir string) (*daemonPair, error) {
	a, err := startDaemon(ctx, o, filepath.Join(dir, "a"))
	if err != nil {
		return nil, err
	}
	b, err := startDaemon(ctx, o, filepath.Join(dir, "b"))
	if err != nil {
		a.stop()
		return nil, err
	}
	p := &daemonPair{a: a, b: b}
	info, err := a.cl.ID(ctx)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("daemon a id: %w", err)
	}
	var addr string
	for _, s := range info.Addrs {
		if (o.transport == "tcp" && strings.Contains(s, "/tcp/")) || (o.transport == "quic" && strings.Contains(s, "/quic-v1/")) {
			addr = s
			break
		}
	}
	if addr == "" {
		p.stop()
		return nil, fmt.Errorf("daemon a has no %s address: %v", o.transport, info.Addrs)
	}
	if _, err := b.cl.Connect(ctx, addr); err != nil {
		p.stop()
		return nil, fmt.Errorf("connect b to a at %s: %w", addr, err)
	}
	return p, nil
}

func (p *daemonPair) stop() {
	p.b.stop()
	p.a.stop()
}

// tunnel sets up a listen on a to target and a forward on b; it returns
// the forward's host:port.
func (p *daemonPair) tunnel(ctx context.Context, proto, target string) (string, error) {
	host, port, _ := net.SplitHostPort(target)
	if _, err := p.a.cl.TunnelListen(ctx, client.TunnelListenRequest{Protocol: proto, Target: "/ip4/" + host + "/tcp/" + port, Temp: true}); err != nil {
		return "", fmt.Errorf("listen on a: %w", err)
	}
	f, err := p.b.cl.TunnelForward(ctx, client.TunnelForwardRequest{Protocol: proto, ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: p.a.id, Temp: true})
	if err != nil {
		return "", fmt.Errorf("forward on b: %w", err)
	}
	parts := strings.Split(f.ListenAddress, "/") // /ip4/127.0.0.1/tcp/PORT
	if len(parts) != 5 {
		return "", fmt.Errorf("forward bound to unexpected address %s", f.ListenAddress)
	}
	return net.JoinHostPort(parts[2], parts[4]), nil
}

func startDaemon(ctx context.Context, o options, repo string) (*daemonProc, error) {
	if out, err := exec.CommandContext(ctx, o.bin, "--repo", repo, "init", "--profile", "test").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("init %s: %v: %s", repo, err, out)
	}
	if o.security != "" {
		var list []string
		for s := range strings.SplitSeq(o.security, ",") {
			list = append(list, strings.TrimSpace(s))
		}
		if err := daemontest.EditConfigFile(repo, func(c *config.Config) { c.Swarm.Security = list }); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(repo + ".log")
	if err != nil {
		return nil, err
	}
	dopts := daemontest.Options{Bin: o.bin, Repo: repo, Args: []string{"--log-level", "warn"}, Log: logf, Timeout: 30 * time.Second}
	if o.procs > 0 {
		dopts.Env = []string{fmt.Sprintf("GOMAXPROCS=%d", o.procs)}
	}
	dd, err := daemontest.Start(ctx, dopts)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w (see %s.log)", err, repo)
	}
	go func() { <-dd.Done(); logf.Close() }() // it logs until it exits
	d := &daemonProc{Daemon: dd, pid: dd.PID(), id: dd.ID}
	if d.cl, err = client.ForRepo(repo); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *daemonProc) stop() {
	_ = d.Stop()
	if d.cl != nil {
		d.cl.Close()
	}
}

// cpuTime is CPU time in seconds, split into user and kernel (system).
type cpuTime struct{ user, sys float64 }

func (c cpuTime) total() float64 { return c.user + c.sys }

func (c cpuTime) sub(d cpuTime) cpuTime { return cpuTime{c.user - d.user, c.sys - d.sys} }

func (c cpuTime) per(gib float64) cpuTime { return cpuTime{c.user / gib, c.sys / gib} }

// procCPU is a process's CPU time so far.
func procCPU(pid int) cpuTime {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTime{}
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field overall, stime the 15th, in clock ticks (100 Hz on Linux).
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return cpuTime{}
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return cpuTime{ut / 100, st / 100}
}

// cpuSeconds is a process's user+system CPU time so far.
func cpuSeconds(pid int) float64 { return procCPU(pid).total() }

// treeCPUSeconds is the CPU time so far of the given processes and all
// their live descendants (sshd serves each connection from child processes).
func treeCPU(roots ...int) cpuTime {
	if len(roots) == 0 {
		return cpuTime{}
	}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var sum cpuTime
	var walk func(int)
	walk = func(pid int) {
		c := procCPU(pid)
		sum.user += c.user
		sum.sys += c.sys
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return sum
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// --- ssh -L ----------------------------------------------------------------

// startSSH runs an sshd on a loopback port and an ssh -L to server; it
// returns the local forward address.
func startSSH(ctx context.Context, dir, server string) (addr string, pids []int, stop func(), err error) {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, e2 := os.Stat("/usr/sbin/sshd"); e2 != nil {
			return "", nil, nil, errors.New("sshd not installed (run bench/tunnel/setup.sh)")
		}
		sshd = "/usr/sbin/sshd"
	}
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		return "", nil, nil, errors.New("ssh not installed (run bench/tunnel/setup.sh)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, nil, err
	}
	_ = os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	for _, k := range []string{"host", "id"} {
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			return "", nil, nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
	if err != nil {
		return "", nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return "", nil, nil, err
	}
	sshdPort, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
PidFile none
LogLevel ERROR
`, sshdPort, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"))
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		return "", nil, nil, err
	}
	d := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	dlog, _ := os.Create(filepath.Join(dir, "sshd.log"))
	d.Stdout, d.Stderr = dlog, dlog
	if err := d.Start(); err != nil {
		return "", nil, nil, fmt.Errorf("start sshd: %w", err)
	}
	var procs []*exec.Cmd
	procs = append(procs, d)
	stop = func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Process.Signal(syscall.SIGTERM)
			_ = procs[i].Wait()
		}
		dlog.Close()
	}
	if err := waitPort(ctx, fmt.Sprintf("127.0.0.1:%d", sshdPort)); err != nil {
		stop()
		return "", nil, nil, fmt.Errorf("sshd: %w (see %s/sshd.log)", err, dir)
	}
	lport, err := freePort()
	if err != nil {
		stop()
		return "", nil, nil, err
	}
	c := exec.Command(sshBin, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
		"-i", filepath.Join(dir, "id"), "-c", "aes128-gcm@openssh.com", "-p", strconv.Itoa(sshdPort),
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", lport, server), "root@127.0.0.1")
	c.Stdout, c.Stderr = dlog, dlog
	if err := c.Start(); err != nil {
		stop()
		return "", nil, nil, fmt.Errorf("start ssh -L: %w", err)
	}
	procs = append(procs, c)
	laddr := fmt.Sprintf("127.0.0.1:%d", lport)
	if err := waitPort(ctx, laddr); err != nil {
		stop()
		return "", nil, nil, fmt.Errorf("ssh -L: %w (see %s/sshd.log)", err, dir)
	}
	if _, _, err := rtt(ctx, laddr, 10); err != nil {
		stop()
		return "", nil, nil, fmt.Errorf("ssh -L does not carry traffic: %w (see %s/sshd.log)", err, dir)
	}
	return laddr, []int{d.Process.Pid, c.Process.Pid}, stop, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- sink/echo server (child process) ----------------------------------------

type serverProc struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(ctx context.Context, work string) (*serverProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("server did not print its address: %w", err)
	}
	return &serverProc{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

func (s *serverProc) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

// runServer serves, per connection, by its first byte: 's' sink (read to
// EOF, answer the count as 8 bytes), 'e' echo, 'i' idle (echo one byte,
// then hold until EOF).
func runServer(ctx context.Context, stdout io.Writer) error {
	raiseFDLimit()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ln.Addr())
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		wg.Go(func() {
			defer c.Close()
			stopOnDone := context.AfterFunc(ctx, func() { c.Close() })
			defer stopOnDone()
			serveConn(c)
		})
	}
}

func serveConn(c net.Conn) {
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case 's':
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		if err != nil {
			return
		}
		var cnt [8]byte
		binary.BigEndian.PutUint64(cnt[:], uint64(n))
		_, _ = c.Write(cnt[:])
	case 'e':
		_, _ = io.CopyBuffer(c, c, make([]byte, 4096))
	case 'i':
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		if _, err := c.Write(b[:]); err != nil {
			return
		}
		_, _ = c.Read(b[:]) // until EOF or reset
	}
}

// --- helpers -----------------------------------------------------------------

func raiseFDLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
