package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"
)

// classify gives a handler's code first, then the library error's, then
// the handler's fallback, then internal.
func TestClassify(t *testing.T) {
	plain := errors.New("boom")
	for _, tc := range []struct {
		err  error
		code string
	}{
		{plain, client.CodeInternal},
		{invalid(plain), client.CodeInvalidArgument},
		{fmt.Errorf("wrapped: %w", withCode(client.CodeConflict, plain)), client.CodeConflict},
		{withCode(client.CodeNotFound, fmt.Errorf("x: %w", tunnel.ErrExists)), client.CodeNotFound},
		{orElse(client.CodeUnreachable, plain), client.CodeUnreachable},
		{orElse(client.CodeUnreachable, fmt.Errorf("dial: %w", context.DeadlineExceeded)), client.CodeTimeout},
		{orElse(client.CodeUnreachable, fmt.Errorf("x: %w", msg.ErrClosed)), client.CodeUnavailable},
		{fmt.Errorf("x: %w", tunnel.ErrInvalid), client.CodeInvalidArgument},
		{fmt.Errorf("x: %w", tunnel.ErrExists), client.CodeConflict},
		{fmt.Errorf("listen: %w", syscall.EADDRINUSE), client.CodeConflict},
		{fmt.Errorf("listen: %w", syscall.EADDRNOTAVAIL), client.CodeInvalidArgument},
		{orElse(client.CodeUnreachable, fmt.Errorf("dial: %w", syscall.EADDRINUSE)), client.CodeUnreachable},
		{fmt.Errorf("x: %w", tunnel.ErrClosed), client.CodeUnavailable},
		{fmt.Errorf("x: %w", gossip.ErrClosed), client.CodeUnavailable},
		{fmt.Errorf("x: %w", gossip.ErrNoPeers), client.CodeNoPeers},
		{fmt.Errorf("x: %w", gossip.ErrTooLarge), client.CodeInvalidArgument},
		{fmt.Errorf("x: %w", &msg.RemoteError{Message: "no"}), client.CodeRemoteError},
		{withCode("no_such_code", plain), client.CodeInternal},
		// The library's typed errors, by kind (errors.Is), not by text.
		{msg.ValidateType(""), client.CodeInvalidArgument},
		{fmt.Errorf("x: %w", msg.ErrTooLarge), client.CodeInvalidArgument},
		{fmt.Errorf("x: %w", msg.ErrExists), client.CodeConflict},
		{fmt.Errorf("x: %w", msg.ErrTimeout), client.CodeTimeout},
		{gossip.ValidateTopic("a b"), client.CodeInvalidArgument},
		{fmt.Errorf("x: %w", gossip.ErrInUse), client.CodeConflict},
		{orElse(client.CodeUnreachable, fmt.Errorf("x: %w", node.ErrSelf)), client.CodeInvalidArgument},
		{orElse(client.CodeUnreachable, &node.OtherNetworkError{Network: "a", Ours: "b"}), client.CodeUnreachable},
		// A peer reachable only through a relay too small (node.RelayedOK),
		// or whose lookup timed out: unreachable, not a timeout.
		{fmt.Errorf("msg: send: %w", &node.UnreachableError{Peer: "p"}), client.CodeUnreachable},
		{orElse(client.CodeUnreachable, fmt.Errorf("reach peer: %w", errors.Join(node.ErrUnreachable, context.DeadlineExceeded))), client.CodeUnreachable},
	} {
		status, code := classify(tc.err)
		if code != tc.code || status != codeStatus[tc.code] {
			t.Errorf("classify(%v) = %d %s, want %d %s", tc.err, status, code, codeStatus[tc.code], tc.code)
		}
	}
}

// A route answering a status its table entry does not declare is counted
// (and logged): the tests' servers require none.
func TestUndeclaredStatusCounted(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	answer := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, withCode(client.CodeConflict, errors.New("taken")))
	}
	for _, tc := range []struct {
		codes []string
		want  int64
	}{{nil, 1}, {[]string{client.CodeConflict}, 0}} {
		s.undeclared.Store(0)
		rec := httptest.NewRecorder()
		s.bound(route{pattern: "GET /x", codes: tc.codes}, answer)(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Code != http.StatusConflict || s.undeclared.Load() != tc.want {
			t.Errorf("codes %v: status %d, undeclared %d, want %d", tc.codes, rec.Code, s.undeclared.Load(), tc.want)
		}
	}
}

// Every error body carries its code; an unknown path is 404 not_found, a
// known path with another method 405 method_not_allowed naming the methods.
func TestErrorBodiesCarryCodes(t *testing.T) {
	p := newMsgPair(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
		allow              string
	}{
		{"GET", "/v1/nope", "", http.StatusNotFound, client.CodeNotFound, ""},
		{"POST", "/v1/id", "{}", http.StatusMethodNotAllowed, client.CodeMethodNotAllowed, "GET"},
		{"POST", "/v1/ping", `{"peer":"banana"}`, http.StatusBadRequest, client.CodeInvalidArgument, ""},
		{"POST", "/v1/ping", `{"peer":"x","zzz":1}`, http.StatusBadRequest, client.CodeInvalidArgument, ""},
		{"POST", "/v1/messages/reply", `{"rid":"42"}`, http.StatusNotFound, client.CodeNotFound, ""},
		{"GET", "/v1/tunnels?kind=both", "", http.StatusBadRequest, client.CodeInvalidArgument, ""},
		{"GET", "/v1/tunnels?knd=listen", "", http.StatusBadRequest, client.CodeInvalidArgument, ""},
		{"POST", "/v1/messages/send/bulk?peer=x", "a\n", http.StatusUnsupportedMediaType, client.CodeUnsupportedMediaType, ""},
	} {
		req, _ := http.NewRequest(tc.method, p.hc.URL+tc.path, strings.NewReader(tc.body))
		if tc.body != "" && !strings.Contains(tc.path, "bulk") {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := p.hc.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e client.ErrorBody
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || derr != nil || e.Code != tc.code || e.Error == "" || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %+v (%v) Allow %q; want %d %s Allow %q", tc.method, tc.path, resp.StatusCode, e, derr, resp.Header.Get("Allow"), tc.status, tc.code, tc.allow)
		}
	}
	// The Go client turns them into *client.Error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ce *client.Error
	if err := p.cl.ReplyRequest(ctx, client.ReplyRequest{RID: "42"}); !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Code != client.CodeNotFound {
		t.Errorf("client: %#v", err)
	}
}

// The client's copies of the libraries' defaults and names agree with them.
func TestClientConstantsAgree(t *testing.T) {
	for name, lib := range map[string]int{"msg.DefaultSubscribeBuffer": msg.DefaultSubscribeBuffer, "gossip.DefaultSubscriptionBuffer": gossip.DefaultSubscriptionBuffer} {
		if lib != client.DefaultSubscribeBuffer {
			t.Errorf("client.DefaultSubscribeBuffer %d, %s %d", client.DefaultSubscribeBuffer, name, lib)
		}
	}
	if client.TunnelKindListen != tunnel.KindListen || client.TunnelKindForward != tunnel.KindForward {
		t.Errorf("client tunnel kinds %q %q, tunnel %q %q", client.TunnelKindListen, client.TunnelKindForward, tunnel.KindListen, tunnel.KindForward)
	}
}
