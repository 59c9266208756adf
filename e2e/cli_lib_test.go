package e2e

// CLI-level checks of library behaviour: typed errors of msg and node
// reaching the user through the daemon and `warren`.

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/daemontest"
)

// A reply over the requester's size limit, or the responder's, reaches
// `warren request` at once as an error naming the size and the limit, not
// as a timeout after --timeout.
func TestRequestReplyTooLarge(t *testing.T) {
	repoA, repoB := newRepo(t), newRepo(t)
	limit := func(n int) func(*config.Config) { return func(c *config.Config) { c.Messages.MaxMessageSize = n } }
	if err := daemontest.EditConfigFile(repoB, limit(1000)); err != nil {
		t.Fatal(err)
	}
	a, b := twoDaemons(t, repoA, repoB)
	quick := func(requester, responder *daemon, size string) {
		t.Helper()
		t0 := time.Now()
		line := fails(t, requester.Repo, []string{`"big"`, size, "1000"}, "request", responder.ID, "big", "x", "--timeout", "30s")
		if d := time.Since(t0); d > 10*time.Second || strings.Contains(line, "timed out") {
			t.Errorf("the error took %s: %s", d, line)
		}
	}

	// The responder's own limit: b answers a with more than b accepts.
	startCLI(t, b.Repo, nil, "respond", "big", "--exec", "head -c 3000 /dev/zero")
	waitHandler(t, b.Repo, "big")
	quick(a, b, "3000")

	// The requester's limit: a answers b with more than b accepts. (Last:
	// b resets the stream the reply came on, and the next frame a writes on
	// it is lost, reported by that Send or Request.)
	startCLI(t, a.Repo, nil, "respond", "big", "--exec", "head -c 5000 /dev/zero")
	waitHandler(t, a.Repo, "big")
	quick(b, a, "5000")
	a.Stop()
	b.Stop()
}

// Connecting to a daemon of another network names both networks;
// connecting by a bare peer ID with nobody to ask says what to do.
func TestConnectOtherNetworkAndBareID(t *testing.T) {
	repoA, repoB := newRepo(t), newRepo(t)
	if err := daemontest.EditConfigFile(repoB, func(c *config.Config) { c.Network = "blue" }); err != nil {
		t.Fatal(err)
	}
	a, b := startDaemon(t, repoA), startDaemon(t, repoB)
	fails(t, a.Repo, []string{"no peers to ask yet", "connect by multiaddr first or set bootstrap peers"}, "connect", b.ID)
	fails(t, a.Repo, []string{`"blue"`, `"warren"`, "network"}, "connect", b.Addr())
	a.Stop()
	b.Stop()
}
