// Package webui is warren's web dashboard: static pages (HTML, CSS and
// JavaScript modules, no build step) embedded in the binary, which drive the
// daemon through the same /v1 control API as the CLI, with the API token as
// a bearer header.
//
// The api server mounts Handler on its loopback TCP listener, behind the
// same Host check (DNS rebinding) as the API. The assets themselves need no
// token: they hold no data; every /v1 call the pages make does. The token
// reaches the page in the URL's fragment (#token=...), which browsers never
// send to a server; the page moves it to sessionStorage and drops it from
// the address bar.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path under which the dashboard is served.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every dashboard answer: scripts,
// styles and connections from the daemon's own origin only, no inline
// script or style, no plugins, no framing, no foreign form targets.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// Serves reports whether Handler answers path: "/" (a redirect to Prefix)
// and everything under Prefix.
func Serves(path string) bool {
	return path == "/" || path == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(path, Prefix)
}

// Handler serves the dashboard's assets under Prefix and redirects "/" to
// it. It answers GET and HEAD only.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard answers GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		if !strings.HasPrefix(r.URL.Path, Prefix) {
			http.Redirect(w, r, Prefix, http.StatusFound)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// URL is the address that opens the dashboard of the API at tcpAddr
// (host:port) logged in with token.
func URL(tcpAddr, token string) string {
	u := "http://" + tcpAddr + Prefix
	if token != "" {
		u += "#token=" + url.QueryEscape(token)
	}
	return u
}
