package webui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesAssetsWithCSP(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{
		"/ui/":            "text/html",
		"/ui/app.js":      "text/javascript",
		"/ui/app.css":     "text/css",
		"/ui/favicon.svg": "image/svg+xml",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		for k, v := range map[string]string{"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("GET %s: %s %q, expected %q", path, k, got, v)
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ui/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d", rec.Code)
	}
}

// The CSP forbids inline scripts and styles: the pages must have none, or
// the browser would refuse them.
func TestAssetsHaveNothingInline(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:|https?://`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, _ := fs.ReadFile(assets, path)
		if m := inline.Find(b); m != nil {
			t.Errorf("%s has %q: inline code, style or a foreign URL", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// No asset loads anything from elsewhere (no CDN: the dashboard works offline).
	_ = fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, path)
		for _, m := range regexp.MustCompile(`https?://[^\s'"]+`).FindAll(b, -1) {
			if !strings.HasPrefix(string(m), "http://www.w3.org/") { // the SVG namespace
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
}

func TestURL(t *testing.T) {
	if got, want := URL("127.0.0.1:5050", "ab+/c"), "http://127.0.0.1:5050/ui/#token=ab%2B%2Fc"; got != want {
		t.Errorf("URL: %q, expected %q", got, want)
	}
	if got, want := URL("[::1]:5050", ""), "http://[::1]:5050/ui/"; got != want {
		t.Errorf("URL: %q, expected %q", got, want)
	}
}
