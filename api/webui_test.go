package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/webui"
)

// The dashboard's assets are served on TCP without the token but with the
// CSP, behind the Host check; nothing else loses the token requirement.
func TestAPIDashboardOnTCP(t *testing.T) {
	g := newGuarded(t, newMsgTestNode(t), config.API{})
	get := func(path, host string) *http.Response {
		t.Helper()
		resp, _, c, _ := g.raw(t, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		c.Close()
		return resp
	}
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/app.css", "/ui/api.js"} {
		resp := get(path, g.tcp)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != webui.CSP {
			t.Errorf("GET %s without a token: %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		if got := get(path, "rebound.example:"+strings.Split(g.tcp, ":")[1]); got.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s with a foreign Host: %d, expected 403", path, got.StatusCode)
		}
	}
	if resp := get("/", g.tcp); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != webui.Prefix {
		t.Errorf("GET /: %d to %q, expected a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), webui.Prefix)
	}
	for _, path := range []string{"/v1/id", "/metrics", "/debug/pprof/", "/uix", "/v1/ui/"} {
		if resp := get(path, g.tcp); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, expected 401", path, resp.StatusCode)
		}
	}
	resp, _, c, _ := g.raw(t, "POST /ui/ HTTP/1.1\r\nHost: "+g.tcp+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	c.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, expected 405", resp.StatusCode)
	}
}
