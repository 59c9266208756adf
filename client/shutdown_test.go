package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Shutdown posts /v1/shutdown without a body, with the token over TCP, and
// turns the daemon's refusal into an *Error with its code.
func TestShutdown(t *testing.T) {
	var got []string
	refuse := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type"))
		w.Header().Set("Content-Type", "application/json")
		if refuse {
			w.WriteHeader(http.StatusNotImplemented)
			_, _ = w.Write([]byte(`{"error":"this node was not started by warren daemon","code":"unsupported"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"stopping","pid":42}`))
	}))
	defer srv.Close()
	c, err := New(Endpoint{TCP: strings.TrimPrefix(srv.URL, "http://")}, "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "POST /v1/shutdown Bearer tok " {
		t.Fatalf("requests %q", got)
	}
	refuse = true
	err = c.Shutdown(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotImplemented || ErrorCode(err) != CodeUnsupported {
		t.Fatalf("refused shutdown: %v", err)
	}
}
