package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/warren-p2p/warren/client"
)

// The tunnel endpoints tell a bad request (400) from a conflict (409) and
// from the node's own failure, so clients in any language can react.
func TestTunnelAPIStatusCodes(t *testing.T) {
	n := newMsgTestNode(t)
	srv := NewServer(n, ServerOptions{})
	checkContract(t, srv)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(busy.Addr().String(), "127.0.0.1:")

	post := func(path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(hs.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e client.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	listen := map[string]any{"protocol": "/x/echo", "target": "/ip4/127.0.0.1/tcp/9", "temp": true}
	cases := []struct {
		name, path string
		body       any
		code       int
		mention    string
	}{
		{"first listener", "/v1/tunnels/listen", listen, http.StatusOK, ""},
		{"same protocol again", "/v1/tunnels/listen", listen, http.StatusConflict, "already has a listener"},
		{"no /x/ prefix", "/v1/tunnels/listen", map[string]any{"protocol": "/echo", "target": "/ip4/127.0.0.1/tcp/9"}, http.StatusBadRequest, "/x/"},
		{"port 0 target", "/v1/tunnels/listen", map[string]any{"protocol": "/x/zero", "target": "/ip4/127.0.0.1/tcp/0"}, http.StatusBadRequest, "/ip4/127.0.0.1/tcp/0"},
		{"target not a multiaddr", "/v1/tunnels/listen", map[string]any{"protocol": "/x/t", "target": "localhost:22"}, http.StatusBadRequest, `target (<target-multiaddr>) "localhost:22": not a valid multiaddr`},
		{"no target", "/v1/tunnels/listen", map[string]any{"protocol": "/x/t"}, http.StatusBadRequest, `target "": is empty`},
		{"listen address not a multiaddr", "/v1/tunnels/forward", map[string]any{"protocol": "/x/t", "listen_address": "127.0.0.1:80", "peer": n.ID().String()}, http.StatusBadRequest, `listen_address (<listen-multiaddr>) "127.0.0.1:80": not a valid multiaddr`},
		{"bad peer", "/v1/tunnels/forward", map[string]any{"protocol": "/x/echo", "listen_address": "/ip4/127.0.0.1/tcp/0", "peer": "nobody"}, http.StatusBadRequest, `"nobody"`},
		{"port in use", "/v1/tunnels/forward", map[string]any{"protocol": "/x/echo", "listen_address": busyAddr, "peer": n.ID().String() + "x", "temp": true}, http.StatusBadRequest, ""},
		{"empty close filter", "/v1/tunnels/close", map[string]any{}, http.StatusBadRequest, "nothing to match"},
		{"close listen address not a multiaddr", "/v1/tunnels/close", map[string]any{"listen_address": "127.0.0.1:40123"}, http.StatusBadRequest,
			`listen_address (--listen-address) "127.0.0.1:40123": not a valid multiaddr`},
		{"close listen address forms", "/v1/tunnels/close", map[string]any{"listen_address": "tcp/1"}, http.StatusBadRequest, "/p2p/<own-peer-id> for every listener"},
		{"close target not a multiaddr or peer ID", "/v1/tunnels/close", map[string]any{"target_address": "nobody"}, http.StatusBadRequest,
			`target_address (--target-address) "nobody": not a valid multiaddr or peer ID`},
		{"close target forms", "/v1/tunnels/close", map[string]any{"target_address": "nobody"}, http.StatusBadRequest, "a bare peer ID"},
	}
	for _, c := range cases {
		code, msg := post(c.path, c.body)
		if code != c.code || !strings.Contains(msg, c.mention) {
			t.Errorf("%s: %d %q, want %d mentioning %q", c.name, code, msg, c.code, c.mention)
		}
	}

	// A real port conflict: a forward on a port another program holds.
	peerB := newMsgTestNode(t)
	code, msg := post("/v1/tunnels/forward", map[string]any{
		"protocol": "/x/echo", "listen_address": busyAddr, "peer": peerB.ID().String(), "temp": true})
	if code != http.StatusConflict || !strings.Contains(msg, "address already in use") {
		t.Errorf("forward on a busy port: %d %q, want 409 naming the address in use", code, msg)
	}
	// An address this machine does not have is the caller's mistake.
	code, msg = post("/v1/tunnels/forward", map[string]any{
		"protocol": "/x/echo", "listen_address": "/ip4/192.0.2.1/tcp/5000", "peer": peerB.ID().String(), "temp": true})
	if code != http.StatusBadRequest || !strings.Contains(msg, "/ip4/192.0.2.1/tcp/5000") {
		t.Errorf("forward on a foreign address: %d %q, want 400 naming the address", code, msg)
	}
}

// POST /v1/tunnels/close reads target_address as a multiaddr or a bare
// peer ID (standing for /p2p/<id>); the tunnel package matches either with
// the forward's peer.
func TestTunnelCloseByTarget(t *testing.T) {
	n := newMsgTestNode(t)
	hs := httptest.NewServer(NewServer(n, ServerOptions{}).Handler())
	defer hs.Close()
	cl, err := client.New(client.Endpoint{TCP: strings.TrimPrefix(hs.URL, "http://")}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	forward := func(peerArg string) {
		t.Helper()
		if _, err := cl.TunnelForward(ctx, client.TunnelForwardRequest{Protocol: "/x/t", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: peerArg, Temp: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		given, filter string
		closed        int
	}{
		{other.String(), other.String(), 1},
		{other.String(), "/p2p/" + other.String(), 1},
		{other.String(), "/p2p/" + n.ID().String(), 0},
		// The peer as it was given, addresses and all.
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + other.String(), "/ip4/127.0.0.1/tcp/4001/p2p/" + other.String(), 1},
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + other.String(), "/ip4/127.0.0.1/tcp/4002/p2p/" + other.String(), 0},
	} {
		forward(c.given)
		res, err := cl.TunnelClose(ctx, client.TunnelCloseRequest{Protocol: "/x/t", TargetAddress: c.filter})
		if err != nil || res.Tunnels != c.closed {
			t.Errorf("forward to %s, close target_address %s: %+v, %v; want %d closed", c.given, c.filter, res, err, c.closed)
		}
		if _, err := cl.TunnelClose(ctx, client.TunnelCloseRequest{All: true}); err != nil {
			t.Fatal(err)
		}
	}
}
