package client

import (
	"os/exec"
	"strings"
	"testing"
)

// A program that only talks to a daemon does not compile the node: the
// client imports no libp2p package (nor QUIC, WebRTC, ...) and none of
// warren's library packages.
func TestClientImportsNoLibp2p(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/libp2p/", "github.com/multiformats/", "github.com/quic-go/", "github.com/pion/",
		"github.com/prometheus/"}
	for _, pkg := range []string{"msg", "gossip", "tunnel", "node", "config", "api"} {
		forbidden = append(forbidden, "github.com/warren-p2p/warren/"+pkg)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		if d == "github.com/warren-p2p/warren" {
			t.Errorf("the client depends on the root package warren")
		}
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
				t.Errorf("the client depends on %s", d)
			}
		}
	}
}
