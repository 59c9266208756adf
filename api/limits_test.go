package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/msg"

	"github.com/warren-p2p/warren/internal/testutil"
)

const testToken = "0123456789abcdef0123456789abcdef"

// guarded is a Server on a unix socket and a loopback TCP address.
type guarded struct {
	srv  *Server
	tcp  string // host:port
	sock string
	unix *client.Client
}

func newGuarded(t *testing.T, n *warren.Node, lim config.API) *guarded {
	t.Helper()
	return newGuardedOpts(t, n, ServerOptions{Token: testToken, Limits: lim})
}

// newGuardedOpts is newGuarded with every option (Token must be set).
func newGuardedOpts(t *testing.T, n *warren.Node, opts ServerOptions) *guarded {
	t.Helper()
	g := &guarded{srv: NewServer(n, opts)}
	checkContract(t, g.srv)
	dir, err := os.MkdirTemp("", "wapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	g.sock = filepath.Join(dir, "api.sock")
	if err := g.srv.ServeUnix(g.sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.srv.Close(context.Background()) })
	if g.tcp, err = g.srv.ServeTCP("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if g.unix, err = client.New(client.Endpoint{Unix: g.sock}, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.unix.Close() })
	return g
}

// raw sends a request on a new TCP connection and reads the answer; the
// connection stays open for the caller to probe.
func (g *guarded) raw(t *testing.T, req string) (*http.Response, string, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", g.tcp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the answer to %q: %v", req, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), c, br
}

// closedByServer reports whether the server closes c within 5 s (a read
// ends with EOF or a reset, not with our own deadline).
func closedByServer(c net.Conn, br *bufio.Reader) error {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	switch {
	case err == nil:
		return errors.New("the server sent more bytes")
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("the connection is still open after 5s")
	}
	return nil
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetCounter().GetValue() + d.GetGauge().GetValue()
	}
	return sum
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// A client that sends its headers slowly is cut off after
// api.read_header_timeout.
func TestAPIReadHeaderTimeoutClosesSlowClient(t *testing.T) {
	g := newGuarded(t, newMsgTestNode(t), config.API{ReadHeaderTimeout: config.Duration(200 * time.Millisecond)})
	c, err := net.Dial("tcp", g.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The headers never end.
	if _, err := io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: "+g.tcp+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := closedByServer(c, bufio.NewReader(c)); err != nil {
		t.Fatalf("slow headers: %v", err)
	}
}

// Connections over api.max_tcp_conns are closed at once and counted: held
// connections do not pile up goroutines or file descriptors, and the unix
// socket keeps answering.
func TestAPITCPConnCap(t *testing.T) {
	const max, held = 32, 200
	g := newGuarded(t, newMsgTestNode(t), config.API{MaxTCPConns: max, ReadHeaderTimeout: config.Duration(time.Minute)})
	ctx := context.Background()
	if _, err := g.unix.Health(ctx); err != nil { // warm up the unix client's connection
		t.Fatal(err)
	}
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	conns := make([]net.Conn, 0, held)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range held {
		c, err := net.Dial("tcp", g.tcp)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if n := g.srv.tcpConns(); n > max {
			t.Fatalf("%d TCP API connections open, over the cap of %d", n, max)
		}
	}
	testutil.Eventually(t, 10*time.Second, "connections over the cap refused", func() bool {
		return counterValue(t, g.srv.metrics.tcpRefused) >= held-max
	})
	if n := g.srv.tcpConns(); n != max {
		t.Fatalf("%d TCP API connections open, want the cap %d", n, max)
	}
	if n := counterValue(t, g.srv.metrics.tcpConns); n != max {
		t.Fatalf("warren_api_tcp_conns = %v, want %d", n, max)
	}
	// The daemon holds at most the cap: the client's own fds are the held
	// ones; each open connection costs the server one goroutine and one fd.
	if extra := openFDs(t) - fds - held; extra > max+8 {
		t.Errorf("the server holds %d more file descriptors with %d connections held (cap %d)", extra, held, max)
	}
	if extra := runtime.NumGoroutine() - goroutines; extra > max+8 {
		t.Errorf("%d more goroutines with %d connections held (cap %d)", extra, held, max)
	}
	// The owner's unix socket answers while TCP is saturated.
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := g.unix.Health(hctx); err != nil {
		t.Fatalf("unix socket while the TCP API is full: %v", err)
	}
	// A refused connection reads why.
	c, err := net.Dial("tcp", g.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("refused connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "api.max_tcp_conns") {
		t.Fatalf("refused connection: %d %s", resp.StatusCode, b)
	}
	// Freed slots are reusable.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testutil.Eventually(t, 10*time.Second, "slots freed", func() bool { return g.srv.tcpConns() == 0 })
	tc, err := client.New(client.Endpoint{TCP: g.tcp}, testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.Health(hctx); err != nil {
		t.Fatalf("TCP after the held connections closed: %v", err)
	}
}

// An unauthenticated request gets 401 and its connection closes: it keeps
// nothing open on the daemon.
func TestAPIUnauthorizedClosesConnection(t *testing.T) {
	g := newGuarded(t, newMsgTestNode(t), config.API{})
	for _, auth := range []string{"", "Authorization: Bearer wrong\r\n"} {
		// A second, pipelined request must not be served.
		req := "GET /v1/id HTTP/1.1\r\nHost: " + g.tcp + "\r\n" + auth + "\r\n"
		resp, body, c, br := g.raw(t, req+req)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "bearer token") || !resp.Close {
			t.Fatalf("auth %q: %d close=%v %s", auth, resp.StatusCode, resp.Close, body)
		}
		if err := closedByServer(c, br); err != nil {
			t.Fatalf("auth %q: after 401: %v", auth, err)
		}
	}
	if n := counterValue(t, g.srv.metrics.refused.WithLabelValues(reasonToken)); n != 2 {
		t.Errorf("refused for the token: %v, want 2", n)
	}
}

// The auth scheme is case-insensitive (RFC 9110); the token is not.
func TestAPIBearerScheme(t *testing.T) {
	g := newGuarded(t, newMsgTestNode(t), config.API{})
	for auth, want := range map[string]int{
		"Bearer " + testToken:                    200,
		"bearer " + testToken:                    200,
		"BEARER " + testToken:                    200,
		"bEaReR  " + testToken:                   200,
		"Bearer " + strings.ToUpper(testToken):   401,
		"Bearer " + testToken[1:]:                401,
		"Basic " + testToken:                     401,
		testToken:                                401,
		"Bearer":                                 401,
		"Bearer " + testToken + " " + testToken:  401,
		"Bearerx " + testToken:                   401,
		"Bearer " + testToken + "\x00":           401,
		"Bearer " + strings.Repeat("a", 1<<10):   401,
		"bearer " + testToken[:len(testToken)-1]: 401,
	} {
		req, _ := http.NewRequest("GET", "http://"+g.tcp+"/v1/health", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if want == 401 && strings.Contains(auth, "\x00") {
				continue // the client refuses to send it
			}
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %.40q: %d, want %d", auth, resp.StatusCode, want)
		}
	}
}

// The TCP API answers only requests addressed to itself: a page the browser
// sends to 127.0.0.1 through DNS rebinding names its own host.
func TestAPIHostCheck(t *testing.T) {
	g := newGuarded(t, newMsgTestNode(t), config.API{})
	_, port, _ := net.SplitHostPort(g.tcp)
	for host, want := range map[string]int{
		g.tcp:                  200,
		"localhost:" + port:    200,
		"LocalHost:" + port:    200,
		"127.0.0.1:" + port:    200,
		"[::1]:" + port:        200,
		"evil.example:" + port: 403,
		"evil.example":         403,
		"127.0.0.1":            403, // port 80
		"127.0.0.1:1":          403,
		"localhost.:" + port:   403,
		"10.0.0.1:" + port:     403,
		"[::2]:" + port:        403,
	} {
		// With the token: only the Host decides.
		resp, body, c, br := g.raw(t, "GET /v1/health HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+testToken+"\r\n\r\n")
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d %s, want %d", host, resp.StatusCode, body, want)
			continue
		}
		if want == 403 {
			if !strings.Contains(body, "DNS rebinding") || !strings.Contains(body, "localhost:"+port) {
				t.Errorf("Host %q: 403 does not name the rule: %s", host, body)
			}
			if err := closedByServer(c, br); err != nil {
				t.Errorf("Host %q: after 403: %v", host, err)
			}
		}
	}
	// Without a token a bad Host is still 403, not 401.
	resp, _, _, _ := g.raw(t, "GET /v1/health HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad Host without token: %d, want 403", resp.StatusCode)
	}
	// The unix socket has no Host rule.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", g.sock)
	}}}
	defer hc.CloseIdleConnections()
	r2, err := hc.Get("http://anything.example/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Errorf("unix socket with any Host: %d", r2.StatusCode)
	}
}

// Every route that reads a JSON body answers 413 with the JSON error body
// for a body over its limit.
func TestAPIBodyTooLarge(t *testing.T) {
	p := newMsgPair(t, func(c *config.Config) { c.Messages.MaxMessageSize = 10; c.Gossip.MaxMessageSize = 10 })
	for path, limit := range map[string]int{
		"/v1/peers/connect":         maxControlBody,
		"/v1/peers/disconnect":      maxControlBody,
		"/v1/ping":                  maxControlBody,
		"/v1/tunnels/listen":        maxControlBody,
		"/v1/tunnels/forward":       maxControlBody,
		"/v1/tunnels/close":         maxControlBody,
		"/v1/tunnels/streams/close": maxControlBody,
		"/v1/messages/send":         int((&msgAPI{s: p.srv}).bodyLimit().n),
		"/v1/messages/request":      int((&msgAPI{s: p.srv}).bodyLimit().n),
		"/v1/messages/reply":        int((&msgAPI{s: p.srv}).bodyLimit().n),
		"/v1/topics/publish":        int((&gossipAPI{s: p.srv}).bodyLimit().n),
		// The bulk endpoints have no body limit but a line limit: 413 for
		// a long line is in TestMsgAPIBadInput and TestTopicPublishAPI.
	} {
		body := `{"x":"` + strings.Repeat("a", limit) + `"}`
		resp, err := p.hc.Client().Post(p.hc.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var e client.ErrorBody
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || derr != nil || !strings.Contains(e.Error, fmt.Sprintf("over %d bytes", limit)) {
			t.Errorf("%s with %d bytes: %d %q (%v), want 413 naming the limit %d", path, len(body), resp.StatusCode, e.Error, derr, limit)
		}
	}
	if n := counterValue(t, p.srv.metrics.refused.WithLabelValues(reasonBodyTooLarge)); n != 11 {
		t.Errorf("refused as too large: %v, want 11", n)
	}
}

// A body is one JSON object and nothing but whitespace after it.
func TestAPIBodyIsOneObject(t *testing.T) {
	p := newMsgPair(t)
	for _, c := range []struct{ path, body, want string }{
		{"/v1/peers/disconnect", `{"peer":"x"} garbage`, "unexpected data after the JSON object"},
		{"/v1/peers/disconnect", `{"peer":"x"}{"peer":"y"}`, "unexpected data after the JSON object"},
		{"/v1/ping", `{"peer":"x"}]`, "unexpected data after the JSON object"},
		{"/v1/tunnels/close", `{"all":true} 1`, "(byte 13)"},
		{"/v1/messages/send", `{"peer":"x","type":"t"}x`, "unexpected data after the JSON object"},
		{"/v1/topics/publish", `{"topic":"t"},`, "unexpected data after the JSON object"},
		{"/v1/peers/disconnect", `null`, "expected a JSON object"},
		{"/v1/peers/disconnect", `["x"]`, "expected a JSON object"},
		{"/v1/peers/disconnect", ``, "empty body"},
		{"/v1/peers/disconnect", `{"peer":`, "unexpected EOF"},
		{"/v1/peers/disconnect", `{"peer":"x","extra":1}`, `unknown field "extra"`},
		// Whitespace after the object is fine: the handler sees the bad peer.
		{"/v1/peers/disconnect", " {\"peer\":\"x\"} \r\n\t ", `"x"`},
	} {
		resp, err := p.hc.Client().Post(p.hc.URL+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var e client.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %q: %d %q, want 400 mentioning %q", c.path, c.body, resp.StatusCode, e.Error, c.want)
		}
		if c.want == `"x"` && strings.Contains(e.Error, "unexpected data") {
			t.Errorf("%s %q: trailing whitespace refused: %q", c.path, c.body, e.Error)
		}
	}
	// The lines of an NDJSON bulk body too.
	for path, line := range map[string]string{
		"/v1/messages/send/bulk?type=t&peer=" + p.b.ID().String(): `{"payload":"aGk="} junk`,
		"/v1/topics/publish/bulk?topic=t":                         `{"data":"aGk="} junk`,
	} {
		resp, err := p.hc.Client().Post(p.hc.URL+path, client.ContentTypeNDJSON, strings.NewReader(line+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		var e client.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, "unexpected data after the JSON object") {
			t.Errorf("%s %q: %d %q, want 400 for the trailing data", path, line, resp.StatusCode, e.Error)
		}
	}
}

// The unix socket has mode 0600, and is never connectable by others: it
// listens inside a private directory until it has that mode.
func TestAPISocketMode(t *testing.T) {
	old := syscall.Umask(0) // the worst umask: a plain bind would give 0777
	defer syscall.Umask(old)
	n := newMsgTestNode(t)
	s := NewServer(n, ServerOptions{})
	checkContract(t, s)
	defer s.Close(context.Background())
	dir := t.TempDir()
	path := filepath.Join(dir, "api.sock")
	called := false
	s.beforeChmod = func(tmp string) {
		called = true
		// The socket already accepts connections here.
		if filepath.Dir(filepath.Dir(tmp)) != dir || filepath.Dir(tmp) == dir {
			t.Errorf("socket listens at %s, not in a directory of its own inside %s", tmp, dir)
		}
		st, err := os.Stat(filepath.Dir(tmp))
		if err != nil || st.Mode().Perm() != 0o700 || !st.IsDir() {
			t.Errorf("the socket's directory: %v %v, want a 0700 directory", st.Mode(), err)
		}
		if st, err := os.Lstat(path); err == nil && st.Mode().Type() == fs.ModeSocket {
			t.Errorf("%s is a socket before the socket has its mode", path)
		}
	}
	_ = os.WriteFile(path, nil, 0o644) // a leftover of a killed daemon
	if err := s.ServeUnix(path); err != nil {
		t.Fatal(err)
	}
	if !called {
		t.Fatal("ServeUnix did not bind in a private directory")
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("api.sock mode %v, want a socket of mode 0600", st.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the directory: %v", ents)
	}
	cl, err := client.New(client.Endpoint{Unix: path}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Health(context.Background()); err != nil {
		t.Fatalf("health over the moved socket: %v", err)
	}
	cl.Close()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("api.sock left after Close: %v", err)
	}
}

// slowLines is a bulk body that pauses before every line.
type slowLines struct {
	lines []string
	pause time.Duration
}

func (s *slowLines) Read(p []byte) (int, error) {
	if len(s.lines) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(p, s.lines[0]+"\n")
	s.lines = s.lines[1:]
	return n, nil
}

// The deadlines do not cut what is meant to last: NDJSON streams, a request
// awaiting a slow reply, a bulk body that keeps coming. A body that stalls
// gets 408.
func TestAPIDeadlinesSpareStreams(t *testing.T) {
	const short = 300 * time.Millisecond
	lim := config.API{ReadHeaderTimeout: config.Duration(short), ReadTimeout: config.Duration(short),
		WriteTimeout: config.Duration(short), IdleTimeout: config.Duration(short)}
	a, b := newMsgTestNode(t), newMsgTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	g := newGuarded(t, a, lim)
	tc, err := client.New(client.Endpoint{TCP: g.tcp}, testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	for name, cl := range map[string]*client.Client{"unix": g.unix, "tcp": tc} {
		// A subscription outlives every timeout, then still delivers.
		st, err := cl.SubscribeMessages(ctx, "late-"+name, client.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * short)
		if err := b.Msg().Send(ctx, a.ID(), "late-"+name, []byte("hi"), msg.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		for {
			ev, err := st.Next()
			if err != nil {
				t.Fatalf("%s: stream after %s idle: %v", name, 4*short, err)
			}
			if ev.ReceivedMessage != nil {
				break
			}
		}
		st.Close()

		// A request whose reply takes longer than every timeout.
		if _, err := b.Msg().Handle("slow-"+name, func(ctx context.Context, _ *msg.Message) ([]byte, error) {
			time.Sleep(4 * short)
			return []byte("done"), nil
		}); err != nil {
			t.Fatal(err)
		}
		rep, err := cl.RequestMessage(ctx, client.RequestRequest{Peer: b.ID().String(), Type: "slow-" + name, TimeoutMS: 20_000})
		if err != nil || string(rep.Payload) != "done" {
			t.Fatalf("%s: slow request: %q %v", name, rep.Payload, err)
		}

		// A bulk body that takes longer than read_timeout in all, but
		// never stalls for that long.
		res, err := cl.SendMessages(ctx, client.BulkParams{Peer: b.ID().String(), Type: "bulk"},
			&slowLines{lines: []string{"1", "2", "3", "4", "5", "6", "7", "8"}, pause: short / 3})
		if err != nil || res.Sent != 8 {
			t.Fatalf("%s: slow bulk body: %+v %v", name, res, err)
		}
		// One that stalls is cut off.
		_, err = cl.SendMessages(ctx, client.BulkParams{Peer: b.ID().String(), Type: "bulk"},
			&slowLines{lines: []string{"1", "2"}, pause: 3 * short})
		var se *client.Error
		if !errors.As(err, &se) || se.Status != http.StatusRequestTimeout {
			t.Fatalf("%s: stalled bulk body: %v, want 408", name, err)
		}
	}

	// A JSON body that stops arriving: 408 and the connection closes.
	req := "POST /v1/peers/disconnect HTTP/1.1\r\nHost: " + g.tcp + "\r\nAuthorization: Bearer " + testToken +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"peer\":"
	resp, body, c, br := g.raw(t, req)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "api.read_timeout") {
		t.Fatalf("stalled JSON body: %d %s", resp.StatusCode, body)
	}
	if err := closedByServer(c, br); err != nil {
		t.Fatalf("after 408: %v", err)
	}
	// A kept-alive connection with nothing to say is closed after
	// api.idle_timeout.
	resp, _, c, br = g.raw(t, "GET /v1/health HTTP/1.1\r\nHost: "+g.tcp+"\r\nAuthorization: Bearer "+testToken+"\r\n\r\n")
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("health: %d close=%v", resp.StatusCode, resp.Close)
	}
	if err := closedByServer(c, br); err != nil {
		t.Fatalf("idle connection: %v", err)
	}
}

// deadlineRecorder is a ResponseWriter that records the deadlines set on it
// through http.ResponseController.
type deadlineRecorder struct {
	http.ResponseWriter
	write []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.write = append(d.write, t)
	return nil
}

func (d *deadlineRecorder) SetReadDeadline(time.Time) error { return nil }

// A call's write deadline starts with its answer (a handler may wait as its
// own bounds allow); a stream has none.
func TestAPIWriteDeadlineStartsWithTheAnswer(t *testing.T) {
	s := &Server{lim: limits{writeTimeout: time.Minute, readTimeout: time.Minute}}
	const wait = 50 * time.Millisecond
	for kind, want := range map[routeKind]int{kindCall: 1, kindUpload: 1, kindStream: 0} {
		rec := &deadlineRecorder{ResponseWriter: httptest.NewRecorder()}
		var before int
		start := time.Now()
		s.bound(route{kind: kind}, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(wait)
			before = len(rec.write)
			writeJSON(w, http.StatusOK, struct{}{})
			_ = http.NewResponseController(w).Flush()
		})(rec, &http.Request{Body: http.NoBody})
		if before != 0 || len(rec.write) != want {
			t.Fatalf("kind %d: %d deadlines before the answer, %d after; want 0 and %d", kind, before, len(rec.write), want)
		}
		if want == 1 && rec.write[0].Before(start.Add(wait+time.Minute)) {
			t.Errorf("kind %d: write deadline %v starts before the answer", kind, rec.write[0].Sub(start))
		}
	}
}

// Close ends everything the API started, whatever its clients hold: held
// connections, connections over the cap, streams, stalled bodies.
func TestAPICloseLeavesNoGoroutines(t *testing.T) {
	n := newMsgTestNode(t)
	// Only the API's own goroutines are checked: the node under it keeps
	// running (identify, DHT) until the test's cleanup closes it.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).sendPushes"))
	g := &guarded{srv: NewServer(n, ServerOptions{Token: testToken, Limits: config.API{MaxTCPConns: 8}})}
	g.sock = filepath.Join(t.TempDir(), "api.sock")
	if err := g.srv.ServeUnix(g.sock); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.tcp, err = g.srv.ServeTCP("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := range 12 {
		c, err := net.Dial("tcp", g.tcp)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%3 == 0 { // a stalled body
			_, _ = io.WriteString(c, "POST /v1/ping HTTP/1.1\r\nHost: "+g.tcp+"\r\nAuthorization: Bearer "+testToken+"\r\nContent-Length: 99\r\n\r\n{")
		}
	}
	cl, err := client.New(client.Endpoint{Unix: g.sock}, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.SubscribeMessages(context.Background(), "held", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "connections accepted", func() bool { return g.srv.tcpConns() == 8 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = g.srv.Close(ctx) // held connections make Shutdown time out; Close then closes them
	st.Close()
	cl.Close()
	for _, c := range conns {
		c.Close()
	}
}
