package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warren-p2p/warren/client"
)

// POST /v1/shutdown calls the hook once, after its answer, and only for a
// caller that passed the guard; the answer reaches the client even though
// the hook's owner closes the server at once, as warren daemon does.
func TestAPIShutdownCallsHookOnce(t *testing.T) {
	var calls atomic.Int32
	closed := make(chan struct{})
	var g *guarded
	g = newGuardedOpts(t, newMsgTestNode(t), ServerOptions{Token: testToken, Shutdown: func() {
		if calls.Add(1) == 1 {
			go func() { // the daemon: leave the wait, Close the server
				defer close(closed)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = g.srv.Close(ctx)
			}()
		}
	}})

	// The TCP guard still runs first: no token, a wrong token, a foreign Host.
	for _, req := range []string{
		"POST /v1/shutdown HTTP/1.1\r\nHost: " + g.tcp + "\r\nContent-Length: 0\r\n\r\n",
		"POST /v1/shutdown HTTP/1.1\r\nHost: " + g.tcp + "\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\n\r\n",
		"POST /v1/shutdown HTTP/1.1\r\nHost: evil.example:80\r\nAuthorization: Bearer " + testToken + "\r\nContent-Length: 0\r\n\r\n",
	} {
		resp, body, _, _ := g.raw(t, req)
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("%q: %d %s, want 401 or 403", req, resp.StatusCode, body)
		}
	}
	// A misspelt query parameter is refused, not obeyed.
	resp, body, _, _ := g.raw(t, "POST /v1/shutdown?now=1 HTTP/1.1\r\nHost: "+g.tcp+"\r\nAuthorization: Bearer "+testToken+"\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown query parameter: %d %s, want 400", resp.StatusCode, body)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("refused requests called the hook %d times", n)
	}
	// GET is not a shutdown.
	if resp, body, _, _ := g.raw(t, "GET /v1/shutdown HTTP/1.1\r\nHost: "+g.tcp+"\r\nAuthorization: Bearer "+testToken+"\r\n\r\n"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/shutdown: %d %s, want 405", resp.StatusCode, body)
	}

	// Over TCP with the token: the answer, then the hook.
	resp, body, _, _ = g.raw(t, "POST /v1/shutdown HTTP/1.1\r\nHost: "+g.tcp+"\r\nAuthorization: Bearer "+testToken+"\r\nContent-Length: 0\r\n\r\n")
	var res client.ShutdownResult
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.Status != "stopping" || res.PID != os.Getpid() {
		t.Fatalf("shutdown over TCP: %d %s", resp.StatusCode, body)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server was not closed after the hook ran")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("hook called %d times, want 1", n)
	}
	// The listeners are gone.
	if c, err := net.Dial("unix", g.sock); err == nil || !(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("unix socket after the shutdown: %v", err)
	}
}

// Over the unix socket the client's Shutdown succeeds, and a second call
// (the daemon still stopping) does not call the hook again.
func TestAPIShutdownClient(t *testing.T) {
	var calls atomic.Int32
	g := newGuardedOpts(t, newMsgTestNode(t), ServerOptions{Token: testToken, Shutdown: func() { calls.Add(1) }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		if err := g.unix.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("hook called %d times after two requests, want 1", n)
	}
}

// Without a hook (a program embedding api.Server) the route says the node
// cannot be stopped through its API: 501 unsupported.
func TestAPIShutdownWithoutHook(t *testing.T) {
	g := newGuarded(t, newMsgTestNode(t), ServerOptions{}.Limits)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.unix.Shutdown(ctx)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusNotImplemented || e.Code != client.CodeUnsupported ||
		!strings.Contains(e.Message, "not started by warren daemon") {
		t.Fatalf("shutdown without a hook: %v (%#v)", err, e)
	}
	// The server still serves.
	if _, err := g.unix.Health(ctx); err != nil {
		t.Fatalf("health after the refused shutdown: %v", err)
	}
}
