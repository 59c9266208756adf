package tunnel

import (
	"context"
	"encoding/json"
	"testing"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// FuzzLoadState feeds arbitrary bytes to the state file parser and every
// entry it accepts to the validation a restore runs (without starting
// anything): nothing may panic, and what the parser accepts is written back
// in a form it accepts again.
func FuzzLoadState(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"tunnels":[]}`,
		`{"version":1,"tunnels":[{"kind":"listen","listen":{"protocol":"/x/a","target":"/ip4/127.0.0.1/tcp/22","allow":["12D3KooWGRUVh7fDZ8HJ4jNsk5cNFh3fqfHu2ruYC8GXLbqnkDLy"],"max_conns":3}}]}`,
		`{"version":1,"tunnels":[{"kind":"listen","listen":{"protocol":"/x/a","target":"/unix/tmp/a.sock","alow":["x"]}}]}`,
		`{"version":1,"tunnels":[{"kind":"forward","forward":{"protocol":"/x/a","listen_address":"/ip4/127.0.0.1/udp/0","peer":"12D3KooWGRUVh7fDZ8HJ4jNsk5cNFh3fqfHu2ruYC8GXLbqnkDLy"}}]}`,
		`{"version":1,"tunnels":[{"kind":"forward","forward":{"protocol":"/x/a","listen_address":"/unix/./a","peer":"/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGRUVh7fDZ8HJ4jNsk5cNFh3fqfHu2ruYC8GXLbqnkDLy"},"x":1}]}`,
		`{"version":1,"tunnels":[]} {}`,
		`{"version":2}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	mn := mocknet.New()
	defer func() { _ = mn.Close() }()
	h, err := mn.GenPeer()
	if err != nil {
		f.Fatal(err)
	}
	m, err := NewManager(context.Background(), h, Options{RepoDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	f.Fuzz(func(t *testing.T, data []byte) {
		sts, err := parseState(data)
		if err != nil {
			return
		}
		for _, st := range sts {
			if tn, err := m.savedToTunnel(st); err != nil {
				_ = placeholder(st)
			} else if tn == nil {
				t.Fatal("savedToTunnel returned neither a tunnel nor an error")
			}
		}
		out, err := json.Marshal(stateFile{Version: stateVersion, Tunnels: sts})
		if err != nil {
			t.Fatalf("re-encode accepted state: %v", err)
		}
		back, err := parseState(out)
		if err != nil {
			t.Fatalf("re-encoded state not accepted: %v\n%s", err, out)
		}
		if len(back) != len(sts) {
			t.Fatalf("round trip: %d tunnels, want %d", len(back), len(sts))
		}
		for i := range back {
			if (back[i].bad == nil) != (sts[i].bad == nil) {
				t.Fatalf("round trip changed whether tunnels[%d] fails closed", i)
			}
		}
	})
}
