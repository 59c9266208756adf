package tunnel

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// stateFixture is a state file written by the string-typed specs (before
// ListenSpec and ForwardSpec took protocol.ID and ma.Multiaddr): every
// transport, an allow list, report_peer_id, max_conns, a custom protocol and
// a forward with addresses. Files written before must keep loading.
const stateFixture = "testdata/tunnels-v1.json"

// A state file written before loads, every entry validates into a tunnel,
// and writing the loaded tunnels back gives the same bytes: the on-disk
// format did not change.
func TestStateFixtureRoundTrip(t *testing.T) {
	want, err := os.ReadFile(stateFixture)
	if err != nil {
		t.Fatal(err)
	}
	mn := mocknet.New()
	defer func() { _ = mn.Close() }()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(context.Background(), h, Options{RepoDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	sts, err := loadState(stateFixture)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 7 {
		t.Fatalf("loaded %d tunnels, want 7", len(sts))
	}
	out := stateFile{Version: stateVersion}
	for i, st := range sts {
		tn, err := m.savedToTunnel(st)
		if err != nil {
			t.Fatalf("tunnels[%d] does not validate: %v", i, err)
		}
		if tn.kind == KindListen {
			out.Tunnels = append(out.Tunnels, savedTunnel{Kind: KindListen, Listen: newSavedListen(tn.lspec)})
		} else {
			out.Tunnels = append(out.Tunnels, savedTunnel{Kind: KindForward, Forward: newSavedForward(tn.fspec)})
		}
	}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got = append(got, '\n'); !bytes.Equal(got, want) {
		t.Errorf("re-saved state differs from %s:\n%s", stateFixture, got)
	}
}

// Restoring from the fixture starts its tunnels and saves the file back
// byte for byte.
func TestStateFixtureRestore(t *testing.T) {
	want, err := os.ReadFile(stateFixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tunnels.json")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	mn := mocknet.New()
	defer func() { _ = mn.Close() }()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(context.Background(), h, Options{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	restored := m.Restore(context.Background())
	if len(restored) != 7 {
		t.Fatalf("Restore gave %d tunnels, want 7: %+v", len(restored), restored)
	}
	for i, in := range restored[:4] { // listeners bind nothing: they all start
		if in.Error != "" || in.Kind != KindListen {
			t.Errorf("tunnels[%d] restored as %+v, want a running listener", i, in)
		}
	}
	if in := restored[1]; in.Protocol != "/x/web" || in.TargetAddress.String() != "/dns4/localhost/tcp/8080" || len(in.Allow) != 2 || !in.ReportPeerID || in.MaxConns != 7 {
		t.Errorf("/x/web restored as %+v", in)
	}
	if in := restored[4]; in.Kind != KindForward || in.Protocol != "/x/ssh" || in.ListenAddress.String() != "/ip4/127.0.0.1/tcp/47391" ||
		in.TargetAddress.String() != "/p2p/12D3KooWGRUVh7fDZ8HJ4jNsk5cNFh3fqfHu2ruYC8GXLbqnkDLy" {
		t.Errorf("forward /x/ssh restored as %+v", in) // a busy port only sets Error
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("state saved after Restore differs from %s:\n%s", stateFixture, got)
	}
}
