package e2e

// The web dashboard (package webui), driven in a real headless Chromium
// (Debian's chromium package; .ci/run installs it) against two daemon
// processes, A and B, as a person would use it: click, type, read.
//
// WARREN_SCREENSHOTS=1 saves a screenshot of every page at 1280x800 and
// 390x844 under docs/img/ (the README shows them).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/webui"
)

// chromiumPath finds Debian's chromium. Without it the test is skipped,
// except on CI, whose .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// browser is one headless Chromium for the whole test, with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab's

	mu       sync.Mutex
	problems []string // page exceptions and console errors
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return err
	})); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				p += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			// Failed requests are the tests' own doing (a bad address, a
			// daemon without /v1/status); CSP refusals and script errors
			// are not.
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				p = fmt.Sprintf("console %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs actions on the tab within 30 s.
func (b *browser) run(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression on the tab.
func eval[T any](t *testing.T, b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy, failing the
// test with what describe returns after timeout.
func (b *browser) waitFor(t *testing.T, timeout time.Duration, expr string, describe string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer dcancel()
		got, derr := chromedp.Run(dctx, chromedp.Evaluate[string](describe))
		if derr != nil {
			got = "(" + derr.Error() + ")"
		}
		t.Fatalf("waited %s for %s: %v; page shows: %s", timeout, expr, err, got)
	}
}

// typeInto replaces an input's text by typing (key events, as a person).
func (b *browser) typeInto(t *testing.T, id, text string) {
	t.Helper()
	b.run(t, chromedp.Evaluate[chromedp.Void](`document.getElementById("`+id+`").value = ""`), chromedp.SendKeys(chromedp.ID(id), text))
}

// takeProblems returns and clears the page errors seen so far.
func (b *browser) takeProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// screenshots saves the current page at both viewport sizes when
// WARREN_SCREENSHOTS is set.
func (b *browser) screenshots(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("WARREN_SCREENSHOTS") == "" {
		return
	}
	dir := filepath.Join("..", "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if v.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		b.run(t, chromedp.EmulateViewport(v.w, v.h, opts...), chromedp.Evaluate[chromedp.Void](`document.activeElement?.blur(); window.scrollTo(0, 0)`),
			chromedp.Sleep(2500*time.Millisecond)) // a poll redraws the charts at this width
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard-"+name+"-"+v.suffix+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.run(t, chromedp.EmulateViewport(1280, 800), chromedp.Sleep(100*time.Millisecond))
}

// open shows a dashboard page (#/name) and waits until it is rendered.
func (b *browser) open(t *testing.T, page string) {
	t.Helper()
	b.run(t, chromedp.Evaluate[chromedp.Void](`location.hash = "#/`+page+`"`))
	b.waitFor(t, 10*time.Second, `!document.getElementById("page-`+page+`").hidden && document.getElementById("conn").classList.contains("ok")`,
		`document.getElementById("conn").textContent`)
}

var tcpPort = regexp.MustCompile(`^/ip4/127\.0\.0\.1/tcp/(\d+)$`)

func TestDashboard(t *testing.T) {
	b := newBrowser(t)
	repoA, repoB := newRepo(t), newRepo(t)
	a, bd := startDaemon(t, repoA), startDaemon(t, repoB)
	ok(t, repoA, "connect", bd.Addr())

	// `warren webui` prints the URL that logs in: the token in the fragment.
	u := strings.TrimSpace(ok(t, repoA, "webui"))
	ep, err := config.ReadEndpoint(repoA)
	if err != nil || ep.TCP == "" {
		t.Fatalf("api.json of A records no TCP address for the dashboard (api.tcp is empty, dashboard on): %+v %v", ep, err)
	}
	tok, err := config.ReadToken(repoA)
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://" + ep.TCP + "/ui/#token=" + tok; u != want {
		t.Fatalf("warren webui printed %q, expected %q", u, want)
	}
	b.run(t, chromedp.Navigate(u))

	t.Run("Overview", func(t *testing.T) {
		b.waitFor(t, 10*time.Second, `document.getElementById("ov-id").textContent === "`+a.ID+`"`, `document.getElementById("ov-id").textContent`)
		sel := `document.querySelector('#ov-peers li[data-peer="` + bd.ID + `"] .path')`
		b.waitFor(t, 10*time.Second, sel+`?.textContent === "direct"`, `document.getElementById("ov-peers").textContent`)
		// The token left the address bar for the tab's sessionStorage.
		if h := eval[string](t, b, `location.hash`); strings.Contains(h, "token") {
			t.Errorf("the token stays in the address bar: %s", h)
		}
		if got := eval[string](t, b, `sessionStorage.getItem("warren.token")`); got != tok {
			t.Errorf("sessionStorage token %q, expected the repo's", got)
		}
		b.open(t, "peers")
		b.waitFor(t, 10*time.Second, `document.querySelector('#peers-table tr[data-peer="`+bd.ID+`"] .path')?.textContent === "direct"`,
			`document.getElementById("peers-table").textContent`)
		b.open(t, "overview")
		b.screenshots(t, "overview")
	})

	t.Run("KeyboardAndTheme", func(t *testing.T) {
		// A fresh load (the tab keeps its token): focus starts at the top.
		b.run(t, chromedp.Reload())
		b.open(t, "overview")
		// Tab reaches the skip link, then the pages; Enter opens one and
		// puts the focus on its heading.
		b.run(t, chromedp.KeyEvent("\t"))
		if got := eval[string](t, b, `document.activeElement.className`); got != "skip" {
			t.Errorf("first Tab focuses %q, expected the skip link", got)
		}
		b.run(t, chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
		if got := eval[string](t, b, `document.activeElement.dataset.page || document.activeElement.outerHTML`); got != "peers" {
			t.Fatalf("third Tab focuses %q, expected the Peers link", got)
		}
		b.run(t, chromedp.KeyEvent("\r"))
		b.waitFor(t, 5*time.Second, `location.hash === "#/peers" && document.activeElement.id === "peers-h"`, `location.hash + " " + document.activeElement.outerHTML`)
		// Light and dark follow the system's preference.
		bg := func(scheme string) string {
			b.run(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
				return err
			}))
			return eval[string](t, b, `getComputedStyle(document.body).backgroundColor`)
		}
		dark, light := bg("dark"), bg("light")
		if dark == light {
			t.Errorf("the same background %s in dark and light schemes", dark)
		}
		if dark != "rgb(18, 22, 21)" || light != "rgb(245, 246, 244)" {
			t.Errorf("backgrounds: dark %s, light %s", dark, light)
		}
		b.open(t, "overview")
		bg("dark")
		b.screenshots(t, "overview-dark")
		bg("light")
	})

	t.Run("Peers", func(t *testing.T) {
		b.open(t, "peers")
		b.run(t, chromedp.Click(chromedp.CSS(`#peers-table tr[data-peer="`+bd.ID+`"] button`)))
		eventually(t, 10*time.Second, func() error {
			if out := ok(t, repoA, "peers", "--wide"); strings.Contains(out, bd.ID) {
				return errors.New("B is still connected after Disconnect in the page")
			}
			return nil
		})
		b.typeInto(t, "connect-addr", bd.Addr())
		b.run(t, chromedp.Click(chromedp.CSS(`#connect-form button[type=submit]`)))
		b.waitFor(t, 15*time.Second, `document.querySelector('#peers-table tr[data-peer="`+bd.ID+`"]')`,
			`document.getElementById("connect-form").textContent`)
		if out := ok(t, repoA, "peers", "--wide"); !strings.Contains(out, bd.ID) {
			t.Fatalf("connect from the page: A's peers are %s", out)
		}
		b.screenshots(t, "peers")
	})

	t.Run("BadInput", func(t *testing.T) {
		b.open(t, "tunnels")
		b.typeInto(t, "fwd-protocol", "/x/web")
		b.typeInto(t, "fwd-listen", "/ip4/127.0.0.1/tcp/not-a-port")
		b.typeInto(t, "fwd-peer", bd.ID)
		b.run(t, chromedp.Click(chromedp.CSS(`#forward-form button[type=submit]`)))
		b.waitFor(t, 10*time.Second, `document.getElementById("fwd-listen-error").textContent !== ""`,
			`document.getElementById("forward-form").textContent`)
		// The page shows the API's own message and code, next to the field.
		cl, err := client.ForRepo(repoA)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		_, apiErr := cl.TunnelForward(context.Background(), client.TunnelForwardRequest{Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/not-a-port", Peer: bd.ID})
		var e *client.Error
		if !errors.As(apiErr, &e) || e.Code != client.CodeInvalidArgument {
			t.Fatalf("the API accepted a bad listen address: %v", apiErr)
		}
		shown := eval[string](t, b, `document.getElementById("fwd-listen-error").textContent`)
		if !strings.Contains(shown, e.Message) || !strings.Contains(shown, e.Code) {
			t.Errorf("next to the listen address the page shows %q, expected the API's %q (%s)", shown, e.Message, e.Code)
		}
		if inv := eval[string](t, b, `document.getElementById("fwd-listen").getAttribute("aria-invalid")`); inv != "true" {
			t.Errorf("the listen address field is not marked invalid: %q", inv)
		}
		for _, other := range []string{"fwd-protocol-error", "fwd-peer-error", "fwd-form-error"} {
			if s := eval[string](t, b, `document.getElementById("`+other+`").textContent`); s != "" {
				t.Errorf("%s shows %q: the error belongs to the listen address", other, s)
			}
		}
		if out := ok(t, repoA, "tunnel", "ls", "--json"); strings.Contains(out, "/x/web") {
			t.Errorf("a tunnel was made from bad input: %s", out)
		}
	})

	t.Run("TunnelForm", func(t *testing.T) {
		// A web server beside B, exposed by B's listener.
		body := strings.Repeat("warren dashboard test ", 4096) // 88 KiB
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body)
		}))
		defer srv.Close()
		ok(t, repoB, "tunnel", "listen", "/x/web", "/ip4/127.0.0.1/tcp/"+strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port))

		b.open(t, "tunnels")
		b.typeInto(t, "fwd-protocol", "/x/web")
		b.typeInto(t, "fwd-listen", "/ip4/127.0.0.1/tcp/0")
		b.typeInto(t, "fwd-peer", bd.ID)
		b.run(t, chromedp.Click(chromedp.CSS(`#forward-form button[type=submit]`)))
		b.waitFor(t, 15*time.Second, `document.getElementById("fwd-result").dataset.listenAddress`,
			`document.getElementById("forward-form").textContent`)
		listen := eval[string](t, b, `document.getElementById("fwd-result").dataset.listenAddress`)
		id := eval[string](t, b, `document.getElementById("fwd-result").dataset.tunnelId`)
		m := tcpPort.FindStringSubmatch(listen)
		if m == nil {
			t.Fatalf("the forward listens on %q", listen)
		}
		local := "127.0.0.1:" + m[1]
		card := `document.querySelector('article.tunnel[data-tunnel-id="` + id + `"]')`
		b.waitFor(t, 10*time.Second, card, `document.getElementById("tunnels-list").textContent`)
		if shown := eval[string](t, b, card+`.querySelector(".listen-address").textContent`); shown != listen {
			t.Errorf("the tunnel's card shows listen address %q, expected %q", shown, listen)
		}

		// A plain HTTP client through A's port reaches the server beside B.
		// No keep-alive: the connection, and its tunnel stream, ends with the answer.
		hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Get("http://" + local + "/")
		if err != nil {
			t.Fatalf("GET through the forward made in the page: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != body {
			t.Fatalf("GET through the forward: %d bytes, expected the %d of the server beside B", len(got), len(body))
		}
		// The page's counters rise, without a reload.
		b.waitFor(t, 10*time.Second, `Number(`+card+`.querySelector(".bytes-in").dataset.bytes) >= `+strconv.Itoa(len(body))+
			` && Number(`+card+`.querySelector(".bytes-out").dataset.bytes) > 0`, card+`.textContent`)
		b.waitFor(t, 10*time.Second, `/in [1-9]/.test(`+card+`.querySelector(".rate").textContent) || `+card+`.querySelector(".spark polyline")`,
			card+`.textContent`)
		// An open connection shows as an active stream, closable alone.
		conn, err := net.DialTimeout("tcp", local, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b.waitFor(t, 10*time.Second, `document.querySelectorAll("#streams-table tr[data-stream-id]").length === 1`, `document.getElementById("streams-table").textContent`)
		b.screenshots(t, "tunnels")
		b.run(t, chromedp.Click(chromedp.CSS(`#streams-table tr[data-stream-id] button`)))
		b.waitFor(t, 10*time.Second, `!document.querySelector("#streams-table tr[data-stream-id]")`, `document.getElementById("streams-table").textContent`)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The daemon resets or closes the client's connection.
		if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the stream closed in the page did not end the connection: %v", err)
		}

		t.Run("Close", func(t *testing.T) {
			b.run(t, chromedp.Click(chromedp.CSS(`article.tunnel[data-tunnel-id="`+id+`"] button.close`)))
			b.waitFor(t, 10*time.Second, `!`+card, `document.getElementById("tunnels-list").textContent`)
			// The port is free: this process can listen on it.
			eventually(t, 10*time.Second, func() error {
				l, err := net.Listen("tcp", local)
				if err != nil {
					return fmt.Errorf("port %s not freed after Close in the page: %w", local, err)
				}
				return l.Close()
			})
			if out := ok(t, repoA, "tunnel", "ls", "--json"); strings.Contains(out, "/x/web") {
				t.Errorf("the tunnel closed in the page is still listed: %s", out)
			}
		})
	})

	t.Run("LiveTail", func(t *testing.T) {
		b.open(t, "messages")
		b.run(t, chromedp.Evaluate[chromedp.Void](`document.getElementById("tail-kind").value = "type"`))
		b.typeInto(t, "tail-name", "chat")
		b.run(t, chromedp.Click(chromedp.ID("tail-start")))
		b.waitFor(t, 10*time.Second, `document.getElementById("tail-status").dataset.state === "subscribed"`,
			`document.getElementById("tail-form").textContent`)
		if start, stop := eval[bool](t, b, `document.getElementById("tail-start").disabled`), eval[bool](t, b, `document.getElementById("tail-stop").disabled`); !start || stop {
			t.Errorf("while tailing: Start disabled %v, Stop disabled %v; expected Start off and Stop on", start, stop)
		}
		for i := range 3 {
			text := fmt.Sprintf("hello from B #%d", i)
			ok(t, repoB, "send", a.ID, "chat", text)
			sent := time.Now()
			// Issue #11: within 2 s of B's CLI returning. Only the NDJSON
			// stream adds to the tail; it takes 1-10 ms here.
			b.waitFor(t, 2*time.Second, `[...document.querySelectorAll("#tail li .body")].some(e => e.textContent === `+strconv.Quote(text)+`)`,
				`document.getElementById("tail-form").innerText`)
			t.Logf("message %d shown %s after B's CLI returned", i, time.Since(sent).Round(time.Millisecond))
		}
		if from := eval[string](t, b, `document.querySelector("#tail li .from").title`); from != bd.ID {
			t.Errorf("the tail names the sender %q, expected B %s", from, bd.ID)
		}
		// The per-type counters follow, live.
		b.waitFor(t, 10*time.Second, `document.querySelector('#types-table tr[data-type="chat"] td:nth-child(2)')?.textContent === "3"`,
			`document.getElementById("types-table").textContent`)
		// And a message the other way, from the page's form.
		b.typeInto(t, "send-peer", bd.ID)
		b.typeInto(t, "send-type", "chat")
		b.typeInto(t, "send-payload", "hi B, from A's page")
		b.run(t, chromedp.Click(chromedp.CSS(`#send-form button[type=submit]`)))
		b.waitFor(t, 10*time.Second, `/queued/.test(document.getElementById("send-result").textContent)`,
			`document.getElementById("send-form").textContent`)
		b.screenshots(t, "messages")
	})

	t.Run("Traffic", func(t *testing.T) {
		b.open(t, "traffic")
		for _, id := range []string{"chart-bytes", "chart-tunnel", "chart-msgs", "chart-drops"} {
			b.waitFor(t, 10*time.Second, `document.querySelector("#`+id+` svg polyline")`, `document.getElementById("`+id+`").textContent`)
		}
		// The messages sent above show in the chart's samples.
		b.waitFor(t, 5*time.Second, `document.getElementById("chart-msgs").querySelector("polyline").getAttribute("points").split(" ").length > 1`,
			`document.getElementById("chart-msgs").textContent`)
		if os.Getenv("WARREN_SCREENSHOTS") != "" {
			stop := feedTraffic(t, repoA, repoB, a.ID, bd.ID)
			time.Sleep(40 * time.Second)
			b.open(t, "tunnels")
			b.screenshots(t, "tunnels")
			b.open(t, "messages")
			b.screenshots(t, "messages")
			b.open(t, "traffic")
			b.screenshots(t, "traffic")
			stop()
		}
	})

	t.Run("NoToken", func(t *testing.T) {
		// The tab forgets its token (as a new tab has none) and loads the
		// dashboard's address without one.
		nb := b
		nb.run(t, chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`), chromedp.Navigate(webui.URL(ep.TCP, "")))
		nb.waitFor(t, 10*time.Second, `!document.getElementById("login").hidden && document.getElementById("login-refusal").dataset.status === "401"`,
			`document.body.innerText`)
		if txt := eval[string](t, nb, `document.getElementById("login").innerText`); !strings.Contains(txt, "warren webui") {
			t.Errorf("the login hint does not say how to get the URL: %s", txt)
		}
		if hidden := eval[bool](t, nb, `document.getElementById("page-overview").hidden`); !hidden {
			t.Error("the overview shows without a token")
		}
		// The API refuses the page's own requests.
		for _, path := range []string{"/v1/id", "/v1/peers", "/v1/tunnels"} {
			st := eval[int](t, nb, `fetch("`+path+`").then(r => r.status)`, chromedp.EvalAwaitPromise)
			if st != http.StatusUnauthorized {
				t.Errorf("GET %s from the page without the token: %d, expected 401", path, st)
			}
		}
		st := eval[int](t, nb, `fetch("/v1/tunnels/forward", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).then(r => r.status)`, chromedp.EvalAwaitPromise)
		if st != http.StatusUnauthorized {
			t.Errorf("POST /v1/tunnels/forward from the page without the token: %d, expected 401", st)
		}
		nb.screenshots(t, "login")

		// The assets need no token, carry the CSP, and pass the Host check.
		resp, err := http.Get(webui.URL(ep.TCP, ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != webui.CSP {
			t.Errorf("GET /ui/: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		req, _ := http.NewRequest(http.MethodGet, webui.URL(ep.TCP, "")+"app.js", nil)
		req.Host = "rebound.example:" + strings.Split(ep.TCP, ":")[1]
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET /ui/app.js with a foreign Host (DNS rebinding): %d, expected 403", resp.StatusCode)
		}
	})

	for _, p := range b.takeProblems() {
		t.Errorf("the page logged an error: %s", p)
	}
}

// feedTraffic makes tunnel and message traffic until stop is called, so
// that the screenshots show charts with something on them.
func feedTraffic(t *testing.T, repoA, repoB, idA, idB string) (stop func()) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		io.WriteString(w, strings.Repeat("x", n))
	}))
	ok(t, repoB, "tunnel", "listen", "/x/shot", "/ip4/127.0.0.1/tcp/"+strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port), "--temp")
	var fwd client.TunnelInfo
	jsonOut(t, repoA, &fwd, "tunnel", "forward", "/x/shot", "/ip4/127.0.0.1/tcp/0", idB, "--temp", "--json")
	m := tcpPort.FindStringSubmatch(fwd.ListenAddress)
	if m == nil {
		t.Fatalf("forward listens on %q", fwd.ListenAddress)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	// One connection held open, for the streams table.
	hold, err := net.Dial("tcp", "127.0.0.1:"+m[1])
	if err != nil {
		t.Fatal(err)
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i, end := 0, time.Now().Add(2*time.Minute); time.Now().Before(end); i++ {
			select {
			case <-done:
				return
			case <-time.After(400 * time.Millisecond):
			}
			n := 20000 + (i%10)*30000
			if resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%s/?n=%d", m[1], n)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if i%2 == 0 {
				_ = exec.Command(bin, "--repo", repoB, "send", idA, "chat", fmt.Sprintf("sample message %d", i)).Run()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		hold.Close()
		hc.CloseIdleConnections()
		srv.Close()
	}
}

// With [api] dashboard = false and no api.tcp the daemon opens no TCP port,
// and `warren webui` says how to turn the dashboard on. No browser needed.
func TestDashboardOff(t *testing.T) {
	repo := newRepo(t)
	setConfig(t, repo, "dashboard = true", "dashboard = false")
	d := startDaemon(t, repo)
	ep, err := config.ReadEndpoint(repo)
	if err != nil {
		t.Fatal(err)
	}
	if ep.TCP != "" {
		t.Errorf("dashboard off, api.tcp empty: the daemon listens on TCP %s", ep.TCP)
	}
	fails(t, repo, []string{"no TCP API", "dashboard = true"}, "webui")
	d.Stop()

	// With api.tcp set but the dashboard off, the API answers and /ui/ does not.
	setConfig(t, repo, "tcp = ''", "tcp = '127.0.0.1:0'")
	d = startDaemon(t, repo)
	defer d.Stop()
	ep, _ = config.ReadEndpoint(repo)
	if resp, err := http.Get(webui.URL(ep.TCP, "")); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /ui/ with the dashboard off: %v %v, expected 401 like any other path", resp, err)
	} else {
		resp.Body.Close()
	}
	fails(t, repo, []string{"serves no dashboard", "dashboard = true"}, "webui")
}
