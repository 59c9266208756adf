package tunnel_test

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/warren-p2p/warren/tunnel"

	"github.com/warren-p2p/warren/internal/testutil"
)

// pingHold answers one byte and then holds the connection with a 1-byte
// read buffer until the client goes away.
func pingHold(c *net.TCPConn) {
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return
	}
	if _, err := c.Write(b); err != nil {
		return
	}
	_, _ = c.Read(b)
}

type memSample struct {
	bytes      uint64 // heap in use + goroutine stacks
	stack      uint64
	goroutines int
}

func sample() memSample {
	for range 6 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{bytes: ms.HeapInuse + ms.StackInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// openIdle opens n connections to addr, pings each once and leaves them idle.
func openIdle(t *testing.T, addr string, n int) []*net.TCPConn {
	t.Helper()
	conns := make([]*net.TCPConn, n)
	var g errgroup.Group
	g.SetLimit(32)
	for i := range conns {
		g.Go(func() error {
			c := dial(t, addr)
			conns[i] = c
			if _, err := c.Write([]byte{1}); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				return err
			}
			return c.SetReadDeadline(time.Time{})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("open idle connections: %v", err)
	}
	return conns
}

// TestIdleConnectionMemory opens 2,000 idle tunnelled connections and
// reports the memory and goroutines each costs (both tunnel sides together,
// the test's own client and server subtracted). Run without -race for
// representative numbers; the bound checked is loose on purpose.
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const n = 2000
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(pingHold)
	// More connections than the default cap (1024, 512 per peer).
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{MaxConns: 2 * n})
	// Warm up the path (connection, protocol negotiation, pools).
	for _, c := range openIdle(t, p.forward.ListenAddress.String(), 10) {
		c.Close()
	}
	testutil.Eventually(t, 10*time.Second, "warm-up streams to end", func() bool { return len(p.cm.Streams()) == 0 && len(p.sm.Streams()) == 0 })

	// Baseline: the same clients talking to the target directly.
	base0 := sample()
	direct := openIdle(t, target, n)
	base1 := sample()
	for _, c := range direct {
		c.Close()
	}

	before := sample()
	conns := openIdle(t, p.forward.ListenAddress.String(), n)
	testutil.Eventually(t, 10*time.Second, "all streams registered", func() bool { return len(p.cm.Streams()) == n && len(p.sm.Streams()) == n })
	after := sample()

	perDirect := float64(base1.bytes-base0.bytes) / n
	perTunnel := (float64(after.bytes) - float64(before.bytes)) / n
	tunnelOnly := perTunnel - perDirect
	gDirect := float64(base1.goroutines-base0.goroutines) / n
	gTunnel := float64(after.goroutines-before.goroutines)/n - gDirect
	t.Logf("direct client+server: %.0f B/conn, %.2f goroutines/conn", perDirect, gDirect)
	stackOnly := (float64(after.stack)-float64(before.stack))/n - (float64(base1.stack)-float64(base0.stack))/n
	t.Logf("tunnelled: %.0f B/conn total; tunnel only (both sides): %.0f B/conn = %.1f KiB per side (stacks %.1f KiB per side); %.2f goroutines/conn for both sides (race=%v)",
		perTunnel, tunnelOnly, tunnelOnly/2/1024, stackOnly/2/1024, gTunnel, raceEnabled)
	// Holding one 128 KiB pooled buffer per idle connection would show as
	// well over 100 KiB per connection.
	if limit := 100.0 * 1024; !raceEnabled && tunnelOnly > limit {
		t.Errorf("idle tunnelled connection costs %.0f B (both sides), want < %.0f", tunnelOnly, limit)
	}
	for _, c := range conns {
		c.Close()
	}
	testutil.Eventually(t, 10*time.Second, "streams to end", func() bool { return len(p.cm.Streams()) == 0 && len(p.sm.Streams()) == 0 })
}
