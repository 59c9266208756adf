// Command natsim benchmarks warren across simulated networks built in Linux
// network namespaces (root only; iproute2 and nftables). Not part of CI.
//
//	go run ./bench/natsim -mode holepunch [-tries 50] [-ttfb 20]
//
// builds a core with a warren relay (libp2p's default relay limits, as public
// relays have) and two homes behind cone NATs (nftables masquerade), runs A
// and B on the default profile (bootstrap = the relay, public_ranges = the
// core), and repeats: drop every connection between A and B, then time a
// client of A's `tunnel forward` (to B by peer ID) from connect to the first
// echoed byte, and check that A's connection to B is direct (hole punched).
// Between tries it waits -gap (25 s) for the NATs' mappings between A and B
// to expire, so that each try punches anew: 50 tries take about 25 minutes.
// It prints the median time to first byte over the first -ttfb tries and
// the hole-punch successes over -tries.
//
//	go run ./bench/natsim -mode lossy [-delay 25ms] [-loss 0.01] [-bulk 16777216] [-rtt 200]
//
// links two namespaces by a line of its own (this kernel has no netem): a
// TUN device in each, and this program moving packets between them with a
// fixed delay each way and random loss. Across it, it measures bulk
// throughput and 1-byte round trips for plain TCP, a warren tunnel (test
// profile daemons) and ssh -L (when sshd is installed; bench/tunnel/setup.sh).
//
// Every address is in a namespace it creates (10.200.0.0/16, 192.168.1-2.0/24,
// 10.201.0.0/30), no namespace has a route out, and all are removed at exit.
package main

import (
	"encoding/binary"
	"encoding/json"
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

var (
	mode    = flag.String("mode", "", "holepunch or lossy")
	bin     = flag.String("bin", "", "warren binary (default: go build ./cmd/warren)")
	tries   = flag.Int("tries", 50, "holepunch: hole-punch tries")
	ttfbN   = flag.Int("ttfb", 20, "holepunch: tries whose time to first byte makes the median")
	delay   = flag.Duration("delay", 25*time.Millisecond, "lossy: one-way delay of the line")
	loss    = flag.Float64("loss", 0.01, "lossy: packet loss per direction")
	bulk    = flag.Int64("bulk", 16<<20, "lossy: bytes of one bulk transfer")
	rttN    = flag.Int("rtt", 200, "lossy: 1-byte round trips")
	runs    = flag.Int("runs", 3, "lossy: runs per contender (median)")
	gap     = flag.Duration("gap", 25*time.Second, "holepunch: pause after dropping the connections, longer than the NATs' 20 s UDP mapping timeout (a closed TCP connection also holds its 4-tuple in TIME_WAIT for 60 s)")
	measure = flag.String("measure", "", "internal: measure against host:port from inside a namespace")
	serve   = flag.String("serve", "", "internal: serve the bench protocol on host:port")
	tag     = "bn" + strconv.Itoa(os.Getpid()%1000)
	cleanup []func()
)

func main() {
	flag.Parse()
	switch {
	case *serve != "":
		must(serveBench(*serve))
		return
	case *measure != "":
		r, err := measureAddr(*measure, *bulk, *rttN)
		must(err)
		must(json.NewEncoder(os.Stdout).Encode(r))
		return
	}
	if os.Geteuid() != 0 {
		fail("natsim needs root (network namespaces)")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; runCleanup(); os.Exit(1) }()
	defer runCleanup()
	if *bin == "" {
		dir, err := os.MkdirTemp("", "natsim-bin")
		must(err)
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		*bin = filepath.Join(dir, "warren")
		sh("go", "build", "-o", *bin, "./cmd/warren")
	}
	switch *mode {
	case "holepunch":
		holepunch()
	case "lossy":
		lossy()
	default:
		fail("-mode holepunch or -mode lossy")
	}
}

// --- namespaces -----------------------------------------------------------

func netns(name string) string {
	name = tag + name
	sh("ip", "netns", "add", name)
	cleanup = append(cleanup, func() {
		_ = exec.Command("ip", "netns", "exec", name, "nft", "flush", "ruleset").Run()
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	sh("ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func link(a, aIP, b, bIP string) {
	va, vb := a+"-"+b[len(b)-1:], b+"-"+a[len(a)-1:]
	sh("ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b)
	sh("ip", "-n", a, "addr", "add", aIP, "dev", va)
	sh("ip", "-n", b, "addr", "add", bIP, "dev", vb)
	sh("ip", "-n", a, "link", "set", va, "up")
	sh("ip", "-n", b, "link", "set", vb, "up")
}

// world is the holepunch topology: core c, relay r, NAT n with home a,
// NAT m with home b.
type world struct{ core, relay, homeA, homeB, relayIP string }

func newWorld() world {
	w := world{core: netns("c"), relay: netns("r"), relayIP: "10.200.1.2"}
	sh("ip", "netns", "exec", w.core, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	link(w.relay, "10.200.1.2/24", w.core, "10.200.1.1/24")
	sh("ip", "-n", w.relay, "route", "add", "10.200.0.0/16", "via", "10.200.1.1")
	w.homeA = home("n", "a", 1)
	w.homeB = home("m", "b", 2)
	return w
}

func home(natName, homeName string, j int) string {
	n, h := netns(natName), netns(homeName)
	link(n, fmt.Sprintf("10.200.%d.2/24", 100+j), tag+"c", fmt.Sprintf("10.200.%d.1/24", 100+j))
	sh("ip", "-n", n, "route", "add", "10.200.0.0/16", "via", fmt.Sprintf("10.200.%d.1", 100+j))
	link(h, fmt.Sprintf("192.168.%d.2/24", j), n, fmt.Sprintf("192.168.%d.1/24", j))
	sh("ip", "-n", h, "route", "add", "10.200.0.0/16", "via", fmt.Sprintf("192.168.%d.1", j))
	sh("ip", "netns", "exec", n, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	// UDP mappings expire within -gap once a connection is gone (QUIC keeps
	// a live one open with a keep-alive every 15 s), so every try starts
	// with no NAT mapping between A and B and must punch a new one.
	sh("ip", "netns", "exec", n, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout=10",
		"net.netfilter.nf_conntrack_udp_timeout_stream=20")
	wan, lan := n+"-c", n+"-"+homeName
	rules := fmt.Sprintf(`table ip natsim {
	chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "%[1]s" masquerade; }
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "%[2]s" oifname "%[1]s" accept
		iifname "%[1]s" oifname "%[2]s" ct state established,related accept
	}
	chain input { type filter hook input priority filter; policy accept; iifname "%[1]s" ct state new drop; }
}
`, wan, lan)
	cmd := exec.Command("ip", "netns", "exec", n, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		fail(fmt.Sprintf("nft: %v: %s", err, out))
	}
	return h
}

// --- warren daemons -------------------------------------------------------

type daemon struct{ repo, ns, id string }

func warren(repo string, args ...string) (string, error) {
	out, err := exec.Command(*bin, append([]string{"--repo", repo}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustWarren(repo string, args ...string) string {
	out, err := warren(repo, args...)
	if err != nil {
		fail(fmt.Sprintf("warren %v: %v: %s", args, err, out))
	}
	return out
}

// newRepo makes a repo of a profile with config.toml edits (old, new pairs).
func newRepo(profile string, pairs ...string) string {
	dir, err := os.MkdirTemp("", "ns")
	must(err)
	cleanup = append(cleanup, func() { os.RemoveAll(dir) })
	repo := filepath.Join(dir, "r")
	mustWarren(repo, "init", "--profile", profile)
	path := filepath.Join(repo, "config.toml")
	b, err := os.ReadFile(path)
	must(err)
	s := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			fail(fmt.Sprintf("config.toml lacks %q", pairs[i]))
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	must(os.WriteFile(path, []byte(s), 0o600))
	return repo
}

func startDaemon(ns, repo string) daemon {
	cmd := exec.Command("ip", "netns", "exec", ns, *bin, "--repo", repo, "daemon")
	logf, err := os.Create(filepath.Join(repo, "daemon.log"))
	must(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(cmd.Start())
	cleanup = append(cleanup, func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait(); logf.Close() })
	d := daemon{repo: repo, ns: ns}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var id struct {
			ID string `json:"id"`
		}
		if out, err := warren(repo, "id", "--json"); err == nil && json.Unmarshal([]byte(out), &id) == nil {
			d.id = id.ID
			return d
		}
		if time.Now().After(deadline) {
			fail("daemon did not start; see " + logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --- holepunch ------------------------------------------------------------

func holepunch() {
	w := newWorld()
	public := "public_ranges = ['10.200.0.0/16']"
	r := startDaemon(w.relay, newRepo("default", "public_ranges = []", public,
		"relay_service = false", "relay_service = true", "reachability = 'auto'", "reachability = 'public'"))
	// The relay by TCP and QUIC, as kubo's bootstrap list has both: peers
	// then observe both, and DCUtR punches with both.
	boot := "bootstrap = ['/ip4/" + w.relayIP + "/tcp/4101/p2p/" + r.id + "', '/ip4/" + w.relayIP + "/udp/4101/quic-v1/p2p/" + r.id + "']"
	a := startDaemon(w.homeA, newRepo("default", "bootstrap = []", boot, "public_ranges = []", public))
	b := startDaemon(w.homeB, newRepo("default", "bootstrap = []", boot, "public_ranges = []", public))
	waitFor("B's relay reservation", 90*time.Second, func() bool {
		return strings.Contains(mustWarren(b.repo, "id"), "/p2p-circuit")
	})
	dir, err := os.MkdirTemp("", "nsock")
	must(err)
	cleanup = append(cleanup, func() { os.RemoveAll(dir) })
	echo := filepath.Join(dir, "echo.sock")
	l, err := net.Listen("unix", echo)
	must(err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	front := filepath.Join(dir, "front.sock")
	mustWarren(b.repo, "tunnel", "listen", "/x/echo", "/unix"+echo)
	mustWarren(a.repo, "tunnel", "forward", "/x/echo", "/unix"+front, b.id)

	var ttfb []time.Duration
	ok := 0
	for i := 1; i <= *tries; i++ {
		_, _ = warren(a.repo, "disconnect", b.id)
		_, _ = warren(b.repo, "disconnect", a.id)
		time.Sleep(*gap)
		// Something (the DHT, gossip) may have reconnected them during the
		// gap; such a try starts warm, with NAT mappings open, and says so.
		_, warm := isDirect(a.repo, b.id)
		start := time.Now()
		c, err := net.Dial("unix", front)
		must(err)
		_ = c.SetDeadline(time.Now().Add(40 * time.Second))
		_, err = c.Write([]byte{1})
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, 1))
		}
		d := time.Since(start)
		c.Close()
		direct, transport := isDirect(a.repo, b.id)
		if direct {
			ok++
		}
		if i <= *ttfbN && err == nil {
			ttfb = append(ttfb, d)
		}
		note := ""
		if warm != "" {
			note = " (warm: connected over " + warm + " before the try)"
		}
		fmt.Printf("try %d: first byte after %v (err %v), direct %v %s%s\n", i, d.Round(time.Millisecond), err, direct, transport, note)
	}
	fmt.Printf("\ntime from forward to first byte: median %v of %d tries\n", median(ttfb).Round(time.Millisecond), len(ttfb))
	fmt.Printf("hole punch: %d of %d tries direct (%.0f%%)\n", ok, *tries, 100*float64(ok)/float64(*tries))
}

func isDirect(repo, peerID string) (bool, string) {
	var ps []struct {
		ID        string `json:"id"`
		Direct    bool   `json:"direct"`
		Transport string `json:"transport"`
	}
	out, err := warren(repo, "peers", "--json")
	if err != nil || json.Unmarshal([]byte(out), &ps) != nil {
		return false, ""
	}
	for _, p := range ps {
		if p.ID == peerID {
			return p.Direct, p.Transport
		}
	}
	return false, ""
}

// --- lossy line -----------------------------------------------------------

func lossy() {
	la, lb := netns("la"), netns("lb")
	tunLine(la, "10.201.0.1", lb, "10.201.0.2")
	self, err := os.Executable()
	must(err)
	srv := exec.Command("ip", "netns", "exec", lb, self, "-serve", "0.0.0.0:5201")
	srv.Stderr = os.Stderr
	must(srv.Start())
	cleanup = append(cleanup, func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	time.Sleep(300 * time.Millisecond)

	contenders := map[string]string{"plain TCP": "10.201.0.2:5201"}
	// warren: test-profile daemons listening on the line.
	listen := "listen = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1']"
	ra := newRepo("test", listen, "listen = ['/ip4/10.201.0.1/tcp/4101']")
	rb := newRepo("test", listen, "listen = ['/ip4/10.201.0.2/tcp/4101']")
	a, b := startDaemon(la, ra), startDaemon(lb, rb)
	mustWarren(a.repo, "connect", "/ip4/10.201.0.2/tcp/4101/p2p/"+b.id)
	mustWarren(b.repo, "tunnel", "listen", "/x/bench", "/ip4/127.0.0.1/tcp/5201")
	mustWarren(a.repo, "tunnel", "forward", "/x/bench", "/ip4/127.0.0.1/tcp/5301", b.id)
	contenders["warren tunnel"] = "127.0.0.1:5301"
	if addr, err := startSSH(la, lb); err != nil {
		fmt.Println("ssh -L skipped:", err)
	} else {
		contenders["ssh -L"] = addr
	}
	fmt.Printf("line: %v each way (RTT %v), %.1f%% loss each way; bulk %d bytes, %d round trips, %d runs\n\n",
		*delay, 2**delay, 100**loss, *bulk, *rttN, *runs)
	names := make([]string, 0, len(contenders))
	for n := range contenders {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		var mbps []float64
		var p50s, p99s []time.Duration
		for range *runs {
			out, err := exec.Command("ip", "netns", "exec", la, self, "-measure", contenders[name],
				"-bulk", strconv.FormatInt(*bulk, 10), "-rtt", strconv.Itoa(*rttN)).Output()
			if err != nil {
				fmt.Printf("%s: %v\n", name, err)
				continue
			}
			var r result
			must(json.Unmarshal(out, &r))
			mbps = append(mbps, r.MBps)
			p50s, p99s = append(p50s, r.P50), append(p99s, r.P99)
		}
		slices.Sort(mbps)
		if len(mbps) == 0 {
			continue
		}
		fmt.Printf("%-14s bulk median %.2f MB/s   RTT p50 %v p99 %v\n", name, mbps[len(mbps)/2],
			median(p50s).Round(100*time.Microsecond), median(p99s).Round(100*time.Microsecond))
	}
}

// tunLine makes a TUN device in each namespace (created here, then moved;
// the file descriptor stays attached) and moves packets between them with
// the configured delay and loss.
func tunLine(nsA, ipA, nsB, ipB string) {
	fa, fb := openTUN(tag+"ta"), openTUN(tag+"tb")
	for _, x := range [][3]string{{nsA, tag + "ta", ipA + " " + ipB}, {nsB, tag + "tb", ipB + " " + ipA}} {
		ips := strings.Fields(x[2])
		sh("ip", "link", "set", x[1], "netns", x[0])
		sh("ip", "-n", x[0], "addr", "add", ips[0], "peer", ips[1], "dev", x[1])
		sh("ip", "-n", x[0], "link", "set", x[1], "up")
	}
	go pipe(fa, fb)
	go pipe(fb, fa)
}

func openTUN(name string) *os.File {
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	must(err)
	var ifr [40]byte
	copy(ifr[:15], name)
	const iffTUN, iffNoPI, tunSetIff = 0x0001, 0x1000, 0x400454ca
	binary.NativeEndian.PutUint16(ifr[16:], iffTUN|iffNoPI)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		fail("TUNSETIFF: " + e.Error())
	}
	must(syscall.SetNonblock(fd, true))
	return os.NewFile(uintptr(fd), name)
}

type packet struct {
	due time.Time
	b   []byte
}

// pipe moves packets from src to dst after the delay, dropping each with
// probability loss. A packet that finds the queue full is dropped too.
func pipe(src, dst *os.File) {
	q := make(chan packet, 8192)
	go func() {
		for p := range q {
			time.Sleep(time.Until(p.due))
			_, _ = dst.Write(p.b)
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			close(q)
			return
		}
		if rand.Float64() < *loss {
			continue
		}
		select {
		case q <- packet{time.Now().Add(*delay), slices.Clone(buf[:n])}:
		default:
		}
	}
}

// startSSH runs sshd in nsB on the line and ssh -L in nsA to nsB's bench
// server; it returns the forward's address in nsA.
func startSSH(nsA, nsB string) (string, error) {
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		return "", errors.New("sshd not installed (bench/tunnel/setup.sh)")
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return "", errors.New("ssh not installed")
	}
	dir, err := os.MkdirTemp("", "nssh")
	if err != nil {
		return "", err
	}
	cleanup = append(cleanup, func() { os.RemoveAll(dir) })
	for _, k := range []string{"host", "id"} {
		sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k))
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "id.pub"))
	must(os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))
	_ = os.MkdirAll("/run/sshd", 0o755)
	cfg := fmt.Sprintf("Port 2222\nListenAddress 10.201.0.2\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nAllowTcpForwarding yes\nPidFile none\nLogLevel ERROR\n",
		filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"))
	must(os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600))
	d := exec.Command("ip", "netns", "exec", nsB, sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	must(d.Start())
	cleanup = append(cleanup, func() { _ = d.Process.Signal(syscall.SIGTERM); _ = d.Wait() })
	time.Sleep(500 * time.Millisecond)
	c := exec.Command("ip", "netns", "exec", nsA, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
		"-i", filepath.Join(dir, "id"), "-c", "aes128-gcm@openssh.com", "-p", "2222",
		"-L", "127.0.0.1:5401:127.0.0.1:5201", "root@10.201.0.2")
	must(c.Start())
	cleanup = append(cleanup, func() { _ = c.Process.Signal(syscall.SIGTERM); _ = c.Wait() })
	time.Sleep(2 * time.Second)
	return "127.0.0.1:5401", nil
}

// --- bench protocol ---------------------------------------------------------
//
// A client sends 'B' and 8 bytes of length, then that many bytes; the server
// answers one byte after the last. Or 'R', then single bytes it echoes.

type result struct {
	MBps float64       `json:"mbps"`
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
}

func serveBench(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var hdr [1]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			switch hdr[0] {
			case 'B':
				var n [8]byte
				if _, err := io.ReadFull(c, n[:]); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint64(n[:]))); err == nil {
					_, _ = c.Write([]byte{1})
				}
			case 'R':
				_, _ = io.Copy(c, c)
			}
		}()
	}
}

func measureAddr(addr string, n int64, rtts int) (result, error) {
	var r result
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return r, err
	}
	hdr := make([]byte, 9)
	hdr[0] = 'B'
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	start := time.Now()
	if _, err := c.Write(hdr); err != nil {
		return r, err
	}
	if _, err := io.CopyN(c, zeros{}, n); err != nil {
		return r, err
	}
	if _, err := io.ReadFull(c, hdr[:1]); err != nil {
		return r, err
	}
	r.MBps = float64(n) / time.Since(start).Seconds() / 1e6
	c.Close()

	c, err = net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return r, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'R'}); err != nil {
		return r, err
	}
	ds := make([]time.Duration, 0, rtts)
	b := []byte{0}
	for range rtts {
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			return r, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return r, err
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	if len(ds) > 0 {
		r.P50, r.P99 = ds[len(ds)/2], ds[len(ds)*99/100]
	}
	return r, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// --- helpers ----------------------------------------------------------------

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func waitFor(what string, d time.Duration, f func() bool) {
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			fail("timed out waiting for " + what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func sh(name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		fail(fmt.Sprintf("%s %s: %v: %s", name, strings.Join(args, " "), err, out))
	}
}

func runCleanup() {
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	cleanup = nil
}

func must(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "natsim:", msg)
	runCleanup()
	os.Exit(1)
}
