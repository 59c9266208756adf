package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
