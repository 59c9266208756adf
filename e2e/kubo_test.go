package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// kuboVersion is the kubo release the interop test runs against. It is
// built from the Go module proxy (see kuboBinary); set WARREN_KUBO to the
// path of an `ipfs` binary to use another one.
const kuboVersion = "v0.43.1"

var (
	kuboOnce sync.Once
	kuboPath string
	kuboErr  error
)

// kuboBinary returns a kubo `ipfs` binary, building it once per machine
// into the user cache directory: kubo's module is downloaded through the Go
// module proxy and built against the go-libp2p version warren uses (kubo
// v0.43.1 replaces go-libp2p with a fork that the proxy does not serve; the
// ipfs p2p code under test is kubo's own either way).
func kuboBinary(t *testing.T) string {
	t.Helper()
	kuboOnce.Do(func() { kuboPath, kuboErr = buildKubo() })
	if kuboErr != nil {
		t.Fatalf("kubo binary for the interop test: %v (set WARREN_KUBO=/path/to/ipfs to use an existing one)", kuboErr)
	}
	return kuboPath
}

func buildKubo() (string, error) {
	if p := os.Getenv("WARREN_KUBO"); p != "" {
		return p, nil
	}
	goenv := func(args ...string) (string, error) {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, isExit := err.(*exec.ExitError); isExit {
				stderr = ee.Stderr
			}
			return "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr))
		}
		return strings.TrimSpace(string(out)), nil
	}
	libp2p, err := goenv("list", "-m", "-f", "{{.Version}}", "github.com/libp2p/go-libp2p")
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "warren-test", "kubo-"+kuboVersion+"-go-libp2p-"+libp2p)
	bin := filepath.Join(dir, "ipfs")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	out, err := goenv("mod", "download", "-json", "github.com/ipfs/kubo@"+kuboVersion)
	if err != nil {
		return "", err
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download kubo: unexpected output %q", out)
	}
	// The module cache is read-only; build from a writable copy.
	src, err := os.MkdirTemp("", "kubo-src")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
		return "", fmt.Errorf("copy kubo source: %w", err)
	}
	for _, args := range [][]string{
		{"-C", src, "mod", "edit", "-dropreplace", "github.com/libp2p/go-libp2p", "-require", "github.com/libp2p/go-libp2p@" + libp2p},
		{"-C", src, "build", "-mod=mod", "-o", bin + ".tmp", "./cmd/ipfs"},
	} {
		if _, err := goenv(args...); err != nil {
			return "", err
		}
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// kubo is a kubo daemon on a --profile=test repo with stream mounting on.
type kubo struct {
	t    *testing.T
	bin  string
	env  []string
	ID   string
	Addr string // its loopback TCP multiaddr, with /p2p/ID
}

func startKubo(t *testing.T) *kubo {
	t.Helper()
	k := &kubo{t: t, bin: kuboBinary(t)}
	k.env = append(os.Environ(), "IPFS_PATH="+filepath.Join(shortTemp(t), "ipfs"), "IPFS_TELEMETRY=off")
	k.run("init", "--profile=test")
	k.run("config", "--json", "Experimental.Libp2pStreamMounting", "true")

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, k.bin, "daemon")
	cmd.Env = k.env
	var logMu sync.Mutex
	var logBuf bytes.Buffer
	log := lockedWriter{&logMu, &logBuf}
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubo daemon: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Daemon is ready") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("kubo daemon not ready after 60 s:\n%s", logBuf.String())
	}
	k.ID = k.run("id", "-f", "<id>")
	for a := range strings.FieldsSeq(k.run("id", "-f", "<addrs>\n")) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			k.Addr = a
		}
	}
	if k.Addr == "" {
		t.Fatalf("kubo has no loopback TCP address")
	}
	return k
}

// run runs an ipfs command against the daemon and returns its trimmed output.
func (k *kubo) run(args ...string) string {
	k.t.Helper()
	cmd := exec.Command(k.bin, args...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// echoExchange sends n bytes through addr to the echo target, reads them
// back while sending and checks them, then closes. It does not half-close:
// kubo's ipfs p2p tears down both directions at the first EOF (kubo#7747).
func echoExchange(t *testing.T, addr string, n int64, seed uint64) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	got := sha256.New()
	readDone := make(chan error, 1)
	go func() {
		_, err := io.CopyN(got, c, n)
		readDone <- err
	}()
	sent := sha256.New()
	if _, err := c.Write([]byte{modeEcho}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.MultiWriter(c, sent), io.LimitReader(newRand(seed), n)); err != nil {
		t.Fatalf("send %d bytes via %s: %v", n, addr, err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("echo via %s: %v", addr, err)
	}
	if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Fatalf("echo via %s: bytes differ", addr)
	}
}

// TestTunnelKuboInterop checks that the bytes on a tunnel stream are
// exactly kubo's: a warren forward reaches a kubo `ipfs p2p listen`, a kubo
// `ipfs p2p forward` reaches a warren listener, and --report-peer-id writes
// the same "<peer-id>\n" line on both.
func TestTunnelKuboInterop(t *testing.T) {
	k := startKubo(t)
	w := startDaemon(t, newRepo(t))
	var id struct {
		PeerID string `json:"id"`
	}
	jsonOut(t, w.Repo, &id, "id", "--json")
	wid := id.PeerID

	// warren forward -> kubo listen.
	toKubo := startTarget(t, true)
	k.run("p2p", "listen", "--report-peer-id", "/x/kubo-echo", toKubo.maddr)
	_, addr := tunnelForward(t, w, "/x/kubo-echo", "/ip4/127.0.0.1/tcp/0", k.Addr)
	echoExchange(t, addr, 8<<20, 1)
	select {
	case line := <-toKubo.lines:
		if line != wid+"\n" {
			t.Fatalf("kubo reported peer %q, want %q", line, wid+"\n")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("kubo's target got no peer ID line")
	}

	// kubo forward -> warren listen.
	toWarren := startTarget(t, true)
	tunnelListen(t, w, "/x/warren-echo", toWarren.maddr, "--report-peer-id")
	k.run("swarm", "connect", w.Addr())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kaddr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	k.run("p2p", "forward", "/x/warren-echo", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", kaddr.Port), "/p2p/"+wid)
	echoExchange(t, kaddr.String(), 8<<20, 2)
	select {
	case line := <-toWarren.lines:
		if line != k.ID+"\n" {
			t.Fatalf("warren reported peer %q, want %q", line, k.ID+"\n")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("warren's target got no peer ID line")
	}

	// warren counted both directions' bytes on each tunnel. A chunk is
	// counted once written on, which may be just after the client (which
	// reads exactly its bytes, not to EOF) has read it.
	eventually(t, 10*time.Second, func() error {
		for _, info := range tunnels(t, w) {
			if info.BytesIn < 8<<20 || info.BytesOut < 8<<20 {
				return fmt.Errorf("tunnel %s %s counted in %d out %d bytes, want >= 8 MiB each way", info.Kind, info.Protocol, info.BytesIn, info.BytesOut)
			}
		}
		return nil
	})
}
