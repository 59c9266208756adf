package tunnel_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren/tunnel"
)

func TestValidation(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	h := e.host()
	other := e.host()
	m := e.manager(h, tunnel.Options{})
	ctx := context.Background()
	okTarget := "/ip4/127.0.0.1/tcp/8080"
	listens := []struct {
		spec tunnel.ListenSpec
		want []string // substrings of the error
	}{
		{tunnel.ListenSpec{Protocol: "/ssh", Target: ma.StringCast(okTarget)}, []string{`"/ssh"`, "/x/", "allow_custom_protocol"}},
		{tunnel.ListenSpec{Protocol: "", Target: ma.StringCast(okTarget)}, []string{"protocol is empty"}},
		{tunnel.ListenSpec{Protocol: "/x/", Target: ma.StringCast(okTarget)}, []string{`"/x/"`}},
		{tunnel.ListenSpec{Protocol: "/x/a b", Target: ma.StringCast(okTarget)}, []string{`"/x/a b"`, "whitespace"}},
		{tunnel.ListenSpec{Protocol: "ssh", Target: ma.StringCast(okTarget), AllowCustomProtocol: true}, []string{`"ssh"`, "start with /"}},
		{tunnel.ListenSpec{Protocol: "/x/t"}, []string{`target ""`, "is empty", "/unix/<path>"}},
		{tunnel.ListenSpec{Protocol: "/x/t", Target: ma.StringCast("/ip4/127.0.0.1/tcp/0")}, []string{`"/ip4/127.0.0.1/tcp/0"`, "non-zero"}},
		{tunnel.ListenSpec{Protocol: "/x/t", Target: ma.StringCast("/ip4/127.0.0.1/sctp/80")}, []string{"/ip4/127.0.0.1/sctp/80", "unsupported"}},
		{tunnel.ListenSpec{Protocol: "/x/t", Target: ma.StringCast("/ip4/127.0.0.1")}, []string{`"/ip4/127.0.0.1"`, "expected"}},
		{tunnel.ListenSpec{Protocol: "/x/t", Target: ma.StringCast("/ip4/127.0.0.1/tcp/80/p2p/" + other.ID().String())}, []string{"components"}},
		{tunnel.ListenSpec{Protocol: "/x/t", Target: ma.StringCast("/ip4/127.0.0.1/udp/53"), ReportPeerID: true}, []string{"report_peer_id", "UDP"}},
		{tunnel.ListenSpec{Protocol: "/x/t", Target: ma.StringCast(okTarget), Allow: []peer.ID{"garbage"}}, []string{"allow[0]"}},
	}
	for _, tc := range listens {
		_, err := m.Listen(ctx, tc.spec)
		if err == nil {
			t.Errorf("Listen(%+v) succeeded, want error", tc.spec)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Listen(%+v) error %q does not mention %q", tc.spec, err, w)
			}
		}
	}
	forwards := []struct {
		spec tunnel.ForwardSpec
		want []string
	}{
		{tunnel.ForwardSpec{Protocol: "/bad", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: other.ID()}, []string{`"/bad"`, "--allow-custom-protocol"}},
		{tunnel.ForwardSpec{Protocol: "/x/t", ListenAddr: ma.StringCast("/dns4/localhost/tcp/0"), Peer: other.ID()}, []string{"/dns4/localhost/tcp/0", "DNS"}},
		{tunnel.ForwardSpec{Protocol: "/x/t", Peer: other.ID()}, []string{`listen address ""`, "is empty"}},
		{tunnel.ForwardSpec{Protocol: "/x/t", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: "garbage"}, []string{"peer", "not a valid peer ID"}},
		{tunnel.ForwardSpec{Protocol: "/x/t", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: ""}, []string{"peer is empty"}},
		{tunnel.ForwardSpec{Protocol: "/x/t", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: h.ID()}, []string{"this host"}},
	}
	for _, tc := range forwards {
		_, err := m.Forward(ctx, tc.spec)
		if err == nil {
			t.Errorf("Forward(%+v) succeeded, want error", tc.spec)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Forward(%+v) error %q does not mention %q", tc.spec, err, w)
			}
		}
	}
	// Custom protocols are fine with the flag.
	if _, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/custom/1", Target: ma.StringCast(okTarget), AllowCustomProtocol: true}); err != nil {
		t.Errorf("custom protocol with AllowCustomProtocol: %v", err)
	}
	// A protocol the host already serves is refused.
	if _, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/ipfs/id/1.0.0", Target: ma.StringCast(okTarget), AllowCustomProtocol: true}); err == nil {
		t.Error("Listen on the host's identify protocol succeeded")
	}
	if len(m.List()) != 1 {
		t.Errorf("List after failed calls = %+v, want only the custom tunnel", m.List())
	}
}

func TestDuplicates(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	h, other := e.host(), e.host()
	m := e.manager(h, tunnel.Options{})
	ctx := context.Background()
	if _, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/dup", Target: ma.StringCast("/ip4/127.0.0.1/tcp/1234")}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/dup", Target: ma.StringCast("/ip4/127.0.0.1/tcp/5678")})
	if err == nil || !strings.Contains(err.Error(), "already") || !strings.Contains(err.Error(), "/x/dup") {
		t.Fatalf("second listener on the same protocol: %v", err)
	}
	f, err := m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/dup", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: other.ID()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/other", ListenAddr: f.ListenAddress, Peer: other.ID()})
	if err == nil || !strings.Contains(err.Error(), f.ListenAddress.String()) {
		t.Fatalf("second forward on the same address: %v", err)
	}
	// Two port-0 forwards are distinct addresses.
	if _, err := m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/dup", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: other.ID()}); err != nil {
		t.Fatalf("second port-0 forward: %v", err)
	}
}

func TestCloseTunnelsFilter(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	target, _ := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	m := p.cm
	other := p.server.ID()
	mk := func(proto string) *tunnel.Tunnel {
		in, err := m.Forward(ctx, tunnel.ForwardSpec{Protocol: protocol.ID(proto), ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: other})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a1 := mk("/x/a")
	mk("/x/a")
	mk("/x/b")
	if _, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/a", Target: ma.StringCast("/ip4/127.0.0.1/tcp/9")}); err != nil {
		t.Fatal(err)
	}
	// p.forward (/x/test) + 3 forwards + 1 listen.
	if n := len(m.List()); n != 5 {
		t.Fatalf("List has %d tunnels, want 5", n)
	}
	if _, _, err := m.CloseTunnels(tunnel.Filter{}); err == nil || !strings.Contains(err.Error(), "nothing to match") {
		t.Errorf("empty filter: %v", err)
	}
	if _, _, err := m.CloseTunnels(tunnel.Filter{All: true, Protocol: "/x/a"}); err == nil {
		t.Error("All combined with Protocol accepted")
	}
	// "/tcp/0", the address every port-0 forward asked for, names none
	// of them: only the bound address ls shows does.
	if n, _, err := m.CloseTunnels(tunnel.Filter{ListenAddress: ma.StringCast("/ip4/127.0.0.1/tcp/0")}); err != nil || n != 0 {
		t.Fatalf("close by listen address /tcp/0 = %d, %v; want 0", n, err)
	}
	// AND of fields: protocol /x/a and the first forward's address.
	if n, _, err := m.CloseTunnels(tunnel.Filter{Protocol: "/x/a", ListenAddress: a1.ListenAddress}); err != nil || n != 1 {
		t.Fatalf("close by protocol+listen address = %d, %v; want 1", n, err)
	}
	// Nothing matches a protocol+address pair that disagree.
	if n, _, err := m.CloseTunnels(tunnel.Filter{Protocol: "/x/b", ListenAddress: a1.ListenAddress}); err != nil || n != 0 {
		t.Fatalf("non-matching AND = %d, %v; want 0", n, err)
	}
	// Protocol alone closes the remaining forward and the listener on /x/a.
	if n, _, err := m.CloseTunnels(tunnel.Filter{Protocol: "/x/a"}); err != nil || n != 2 {
		t.Fatalf("close by protocol = %d, %v; want 2", n, err)
	}
	// TargetAddress matches forwards by /p2p/<id>.
	if n, _, err := m.CloseTunnels(tunnel.Filter{TargetAddress: ma.StringCast("/p2p/" + other.String()), Protocol: "/x/b"}); err != nil || n != 1 {
		t.Fatalf("close by target = %d, %v; want 1", n, err)
	}
	// The closed listener's protocol is free again.
	if _, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/a", Target: ma.StringCast("/ip4/127.0.0.1/tcp/9")}); err != nil {
		t.Fatalf("re-listen after close: %v", err)
	}
	// Closing a tunnel with a live connection resets it and counts it.
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	_, _ = c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	n, s, err := m.CloseTunnels(tunnel.Filter{All: true})
	if err != nil || n != 2 || s != 1 {
		t.Fatalf("close all = %d tunnels, %d streams, %v; want 2, 1", n, s, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection survived closing its tunnel")
	}
	if len(m.List()) != 0 {
		t.Fatalf("List after close all: %+v", m.List())
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.Replace(a1.ListenAddress.String(), "/tcp/", ":", 1), "/ip4/"), time.Second); err == nil {
		t.Error("closed forward still accepting")
	}
}

func TestPersistence(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	target, accepted := e.tcpServer(echo)
	dir := t.TempDir()
	serverState := filepath.Join(dir, "server.json")
	clientState := filepath.Join(dir, "client.json")
	server, client := e.host(), e.host()
	sm := e.manager(server, tunnel.Options{StatePath: serverState})
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/p", Target: ma.StringCast(target), Allow: []peer.ID{client.ID()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/temp", Target: ma.StringCast(target), Temp: true}); err != nil {
		t.Fatal(err)
	}
	cm1, err := tunnel.NewManager(context.Background(), client, tunnel.Options{StatePath: clientState})
	if err != nil {
		t.Fatal(err)
	}
	fwd1, err := cm1.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/p", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	fwd2, err := cm1.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/p", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cm1.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/p", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Temp: true}); err != nil {
		t.Fatal(err)
	}
	if err := cm1.Close(); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]int{serverState: 1, clientState: 2} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
		}
		if n := savedCount(t, path); n != want {
			t.Errorf("%s has %d tunnels, want %d (temp tunnels are not saved)", path, n, want)
		}
	}

	// Restart the client with the second forward's port taken: the first
	// comes back on its old port, the second is listed with its error.
	port2 := tcpPort(fwd2.ListenAddress)
	blocker, err := net.Listen("tcp", "127.0.0.1:"+port2)
	if err != nil {
		t.Fatal(err)
	}
	cm2 := e.manager(client, tunnel.Options{StatePath: clientState})
	if len(cm2.List()) != 0 {
		t.Fatal("tunnels started before Restore")
	}
	restored := cm2.Restore(ctx)
	if len(restored) != 2 {
		t.Fatalf("Restore returned %d tunnels, want 2: %+v", len(restored), restored)
	}
	if restored[0].Error != "" || !restored[0].ListenAddress.Equal(fwd1.ListenAddress) {
		t.Errorf("first forward restored as %+v, want no error on %s", restored[0], fwd1.ListenAddress)
	}
	if restored[1].Error == "" || !strings.Contains(restored[1].Error, port2) {
		t.Errorf("second forward restored as %+v, want an error naming port %s", restored[1], port2)
	}
	if l := cm2.List(); len(l) != 2 || l[1].Error == "" {
		t.Errorf("List after restore = %+v, want the failed tunnel listed with its error", l)
	}
	if n := savedCount(t, clientState); n != 2 {
		t.Errorf("state after failed restore has %d tunnels, want 2 (failed one kept)", n)
	}
	c := dial(t, fwd1.ListenAddress.String())
	if err := sendAndCheckEcho(c, 4096); err != nil {
		t.Fatalf("restored forward: %v", err)
	}
	c.Close()
	if accepted.Load() != 1 {
		t.Errorf("target accepted %d, want 1", accepted.Load())
	}

	// Free the port: the failed tunnel is retried with backoff, by itself.
	blocker.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := cm2.List()
		if len(l) == 2 && l[1].Error == "" && l[1].ListenAddress.Equal(fwd2.ListenAddress) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed tunnel was not retried once its port was free: %+v", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c = dial(t, fwd2.ListenAddress.String())
	if err := sendAndCheckEcho(c, 4096); err != nil {
		t.Fatalf("retried forward: %v", err)
	}
	c.Close()

	// Closing removes from the state file.
	if n, _, err := cm2.CloseTunnels(tunnel.Filter{ListenAddress: fwd1.ListenAddress}); err != nil || n != 1 {
		t.Fatalf("close = %d, %v", n, err)
	}
	if n := savedCount(t, clientState); n != 1 {
		t.Errorf("state after close has %d tunnels, want 1", n)
	}

	// A corrupt state file is an error, never silently overwritten.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tunnel.NewManager(context.Background(), client, tunnel.Options{StatePath: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("NewManager with corrupt state: %v", err)
	}
}

// An invalid saved spec is listed with its error and kept in the file.
func TestRestoreInvalidEntryKept(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	path := filepath.Join(t.TempDir(), "state.json")
	allowed := e.host().ID().String()
	doc := `{"version":1,"tunnels":[{"kind":"listen","listen":{"protocol":"/nox","target":"/ip4/127.0.0.1/tcp/22"}},
	{"kind":"listen","listen":{"protocol":"/x/ok","target":"/ip4/127.0.0.1/tcp/22","allow":["` + allowed + `"]}},
	{"kind":"listen","listen":{"protocol":"/x/badallow","target":"/ip4/127.0.0.1/tcp/22","allow":["` + allowed + `","banana"]}}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	m := e.manager(e.host(), tunnel.Options{StatePath: path})
	got := m.Restore(context.Background())
	if len(got) != 3 || got[0].Error == "" || !strings.Contains(got[0].Error, "/x/") || got[1].Error != "" ||
		!strings.Contains(got[2].Error, `allow[1] "banana"`) {
		t.Fatalf("Restore = %+v", got)
	}
	if len(got[1].Allow) != 1 || got[1].Allow[0].String() != allowed {
		t.Fatalf("restored allow-list = %v, want [%s]", got[1].Allow, allowed)
	}
	if n := savedCount(t, path); n != 3 {
		t.Fatalf("state has %d tunnels after restore, want 3", n)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"banana"`) || !strings.Contains(string(b), allowed) {
		t.Fatalf("state file lost the unparsable entry or the allow-list:\n%s", b)
	}
	if n, _, err := m.CloseTunnels(tunnel.Filter{Protocol: "/nox"}); err != nil || n != 1 {
		t.Fatalf("close invalid tunnel = %d, %v", n, err)
	}
	if n := savedCount(t, path); n != 2 {
		t.Fatalf("state has %d tunnels after close, want 2", n)
	}
}

func savedCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tunnels []json.RawMessage `json:"tunnels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("state file %s: %v\n%s", path, err, b)
	}
	return len(doc.Tunnels)
}

// A forward whose peer has no listener for the protocol counts each client
// it had to reset and keeps the reason, for 'warren tunnel ls'.
func TestForwardFailureCountedWithLastError(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	server, client := e.host(), e.host()
	_ = e.manager(server, tunnel.Options{})
	cm := e.manager(client, tunnel.Options{})
	fwd, err := cm.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/none", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(strings.Replace(fwd.ListenAddress.String(), "/tcp/", ":", 1), "/ip4/")
	for range 2 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			continue // the stream failed and the client was reset before connect returned
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Read(make([]byte, 1)) // reset once the stream fails
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		in := cm.List()[0]
		if in.Failed == 2 && strings.Contains(in.LastError, "protocol") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forward to a peer without the listener: failed %d, last error %q", in.Failed, in.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close ends the retry loop of a tunnel that cannot be restored, however
// often it retries (Close holds the lock a retry needs), and leaks nothing.
func TestRestoreRetryStopsAtClose(t *testing.T) {
	defer tunnel.SetRetryBackoff(time.Millisecond, 2*time.Millisecond)()
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	server, client := e.host(), e.host()
	state := filepath.Join(t.TempDir(), "tunnels.json")
	cm1, err := tunnel.NewManager(ctx, client, tunnel.Options{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := cm1.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/p", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	cm1.Close()
	blocker, err := net.Listen("tcp", "127.0.0.1:"+tcpPort(fwd.ListenAddress))
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	for range 20 {
		cm, err := tunnel.NewManager(ctx, client, tunnel.Options{StatePath: state})
		if err != nil {
			t.Fatal(err)
		}
		if r := cm.Restore(ctx); len(r) != 1 || r[0].Error == "" {
			t.Fatalf("restore with the port busy: %+v", r)
		}
		time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond) // a few retries
		done := make(chan struct{})
		go func() { cm.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return while a restore was being retried")
		}
	}
}

// A saved address that is not a multiaddr fails only its tunnel: listed
// with an error naming the field and the value, not started, kept in the
// file as read. A value of the wrong JSON type refuses the file, naming the
// field.
func TestRestoreBadSavedAddressKept(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	other := e.host().ID().String()
	doc := `{"version":1,"tunnels":[{"kind":"listen","listen":{"protocol":"/x/badtarget","target":"not-a-multiaddr"}},
	{"kind":"forward","forward":{"protocol":"/x/badlisten","listen_address":"127.0.0.1:80","peer":"` + other + `"}},
	{"kind":"listen","listen":{"protocol":"/x/ok","target":"/ip4/127.0.0.1/tcp/22"}}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	h := e.host()
	m := e.manager(h, tunnel.Options{StatePath: path})
	got := m.Restore(context.Background())
	if len(got) != 3 {
		t.Fatalf("Restore = %+v, want 3 tunnels", got)
	}
	if in := got[0]; in.Protocol != "/x/badtarget" || !strings.Contains(in.Error, `target "not-a-multiaddr" is not a multiaddr`) || in.TargetAddress != nil {
		t.Errorf("bad target restored as %+v, want an error naming target and its value", in)
	}
	if in := got[1]; in.Protocol != "/x/badlisten" || !strings.Contains(in.Error, `listen_address "127.0.0.1:80" is not a multiaddr`) ||
		in.ListenAddress != nil || in.TargetAddress.String() != "/p2p/"+other {
		t.Errorf("bad listen address restored as %+v, want an error naming listen_address and its value", in)
	}
	if in := got[2]; in.Error != "" || in.TargetAddress.String() != "/ip4/127.0.0.1/tcp/22" {
		t.Errorf("good tunnel restored as %+v, want running", in)
	}
	if slices.Contains(h.Mux().Protocols(), protocol.ID("/x/badtarget")) {
		t.Error("the listener with a bad target serves its protocol")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"not-a-multiaddr"`) || !strings.Contains(string(b), `"127.0.0.1:80"`) {
		t.Errorf("state file lost the unparsable entries:\n%s", b)
	}
	if n, _, err := m.CloseTunnels(tunnel.Filter{Protocol: "/x/badtarget"}); err != nil || n != 1 {
		t.Fatalf("close the bad listener = %d, %v", n, err)
	}

	typed := filepath.Join(dir, "typed.json")
	if err := os.WriteFile(typed, []byte(`{"version":1,"tunnels":[{"kind":"listen","listen":{"protocol":"/x/a","target":5}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tunnel.NewManager(context.Background(), h, tunnel.Options{StatePath: typed}); err == nil || !strings.Contains(err.Error(), "listen.target") {
		t.Errorf("a target that is a JSON number: %v, want the file refused naming listen.target", err)
	}
}
