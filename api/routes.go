package api

// Routing and middleware: the table of every route with the error codes it
// may answer (docs/openapi.yaml documents the same, and a test compares
// them), the per-route deadlines, the check that a route answers only the
// statuses it declares, and the TCP guard (Host header, bearer token).

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/webui"
)

// route is one API route.
type route struct {
	pattern string // "GET /v1/id"
	kind    routeKind
	h       http.HandlerFunc
	// codes are the error codes the route may answer, besides the ones
	// every route may answer on TCP (tcpCodes).
	codes []string
}

// tcpCodes are answered by the TCP guard before any route runs.
var tcpCodes = []string{client.CodeUnauthorized, client.CodeForbidden}

// bodyCodes are the answers of readBody: a JSON body that is malformed,
// over its limit or late.
var bodyCodes = []string{client.CodeInvalidArgument, client.CodeBodyTooLarge, client.CodeBodyTimeout}

// with returns codes followed by more.
func with(codes []string, more ...string) []string { return append(slices.Clip(codes), more...) }

// routes lists every route of the API.
func (s *Server) routes() []route {
	metrics := promhttp.HandlerFor(s.node.Metrics(), promhttp.HandlerOpts{})
	rs := []route{
		{pattern: "GET /metrics", h: metrics.ServeHTTP, codes: []string{client.CodeInternal}},
		{pattern: "GET /v1/health", h: s.health},
		{pattern: "GET /v1/version", h: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, client.VersionInfo{Version: warren.Version, Go: runtime.Version()})
		}},
		{pattern: "GET /v1/id", h: s.id},
		{pattern: "GET /v1/peers", h: s.peers},
		{pattern: "GET /v1/status", h: s.status},
		{pattern: "POST /v1/peers/connect", h: s.connect, codes: with(bodyCodes, client.CodeUnreachable, client.CodeTimeout)},
		{pattern: "POST /v1/peers/disconnect", h: s.disconnect, codes: with(bodyCodes, client.CodeNotFound)},
		{pattern: "POST /v1/ping", h: s.ping, codes: with(bodyCodes, client.CodeUnreachable, client.CodeTimeout)},
		s.shutdownRoute(),
		// Go's profiler, for "go tool pprof http://.../debug/pprof/profile"; as
		// trusted as the rest of the API (socket mode 0600, or the token). A
		// profile or trace is written when it ends: the write deadline starts
		// then. Its errors are net/http/pprof's plain text.
		{pattern: "GET /debug/pprof/", h: pprof.Index, codes: []string{client.CodeNotFound}},
		{pattern: "GET /debug/pprof/cmdline", h: pprof.Cmdline},
		{pattern: "GET /debug/pprof/profile", h: pprof.Profile, codes: []string{client.CodeInvalidArgument, client.CodeInternal}},
		{pattern: "GET /debug/pprof/symbol", h: pprof.Symbol},
		{pattern: "GET /debug/pprof/trace", h: pprof.Trace, codes: []string{client.CodeInvalidArgument, client.CodeInternal}},
	}
	rs = append(rs, newMsgAPI(s).routes()...)
	rs = append(rs, (&gossipAPI{s: s}).routes()...)
	rs = append(rs, s.tunnelRoutes()...)
	return rs
}

// register puts the routes on the mux, each with its deadlines and its
// status check, and answers every other request 404 (no such path) or 405
// (the path exists with other methods).
func (s *Server) register(rs []route) {
	methods := map[string][]string{} // path: its methods
	for _, rt := range rs {
		method, path, _ := strings.Cut(rt.pattern, " ")
		methods[path] = append(methods[path], method)
		s.mux.HandleFunc(rt.pattern, s.bound(rt, rt.h))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ms := methods[r.URL.Path]; len(ms) > 0 {
			sort.Strings(ms)
			w.Header().Set("Allow", strings.Join(ms, ", "))
			writeError(w, withCode(client.CodeMethodNotAllowed, fmt.Errorf("%s %s: expected %s (see docs/api.md)", r.Method, r.URL.Path, strings.Join(ms, " or "))))
			return
		}
		writeError(w, withCode(client.CodeNotFound, fmt.Errorf("no API endpoint %s %s (see docs/api.md)", r.Method, r.URL.Path)))
	})
}

// statuses returns the HTTP statuses a route may answer: 200, those of its
// codes and those of tcpCodes.
func (rt route) statuses() map[int]bool {
	st := map[int]bool{http.StatusOK: true}
	for _, c := range with(rt.codes, tcpCodes...) {
		st[codeStatus[c]] = true
	}
	return st
}

// checkedWriter reports an answer whose status the route does not declare:
// a handler that answers what docs/openapi.yaml does not say is a bug, and
// the tests fail on it (Server.undeclared).
type checkedWriter struct {
	http.ResponseWriter
	s       *Server
	pattern string
	allowed map[int]bool
	wrote   bool
}

func (c *checkedWriter) WriteHeader(status int) {
	if !c.wrote {
		c.wrote = true
		if !c.allowed[status] {
			c.s.undeclared.Add(1)
			c.s.log.Error("API route answered a status its contract does not declare (docs/openapi.yaml)", "route", c.pattern, "status", status)
		}
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Flush implements http.Flusher.
func (c *checkedWriter) Flush() {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (c *checkedWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// ---------------------------------------------------------------- routes

// routeKind says which deadlines a route's requests get.
type routeKind int

const (
	// kindCall: the body, if any, must arrive within api.read_timeout; the
	// answer, once begun, must be written within api.write_timeout.
	kindCall routeKind = iota
	// kindUpload (bulk bodies): every read of the body must make progress
	// within api.read_timeout, however long the whole body takes; the
	// answer is a call's.
	kindUpload
	// kindStream (NDJSON answers): no write deadline; the stream ends when
	// the client leaves or the server closes.
	kindStream
)

// bound applies the deadlines of the route's kind to h's requests, and
// checks the statuses it answers. The server itself has no ReadTimeout or
// WriteTimeout: they cannot tell a stream from a call.
func (s *Server) bound(rt route, h http.HandlerFunc) http.HandlerFunc {
	kind, allowed := rt.kind, rt.statuses()
	return func(w http.ResponseWriter, r *http.Request) {
		w = &checkedWriter{ResponseWriter: w, s: s, pattern: rt.pattern, allowed: allowed}
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			db := &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: s.lim.readTimeout, perRead: kind == kindUpload}
			if !db.perRead {
				_ = rc.SetReadDeadline(time.Now().Add(s.lim.readTimeout))
			}
			r.Body = db
		}
		if kind == kindStream {
			h(w, r)
			return
		}
		h(&deadlineWriter{ResponseWriter: w, rc: rc, timeout: s.lim.writeTimeout}, r)
	}
}

// deadlineBody enforces the read deadline of a request body and clears it at
// the body's end: net/http then reads the connection in the background to
// notice a client that leaves, and an expired deadline there would cancel
// the request's context while the handler is still working.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	perRead bool // extend the deadline before every read
	fixed   bool // setDeadline was called: leave the deadline alone
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.perRead && !b.fixed && !b.done {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done && !b.fixed {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// setDeadline fixes the read deadline to t, for draining a body whose
// request has failed.
func (b *deadlineBody) setDeadline(t time.Time) {
	b.fixed = true
	_ = b.rc.SetReadDeadline(t)
}

// deadlineWriter starts the write deadline with the answer's first byte, so
// a handler may wait (a request awaiting its reply, a ping, a profile) as
// long as its own bounds allow, but a client that does not read its answer
// cannot hold the handler.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	started bool
}

func (d *deadlineWriter) start() {
	if !d.started {
		d.started = true
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	}
}

func (d *deadlineWriter) WriteHeader(code int) { d.start(); d.ResponseWriter.WriteHeader(code) }

func (d *deadlineWriter) Write(p []byte) (int, error) { d.start(); return d.ResponseWriter.Write(p) }

// Flush implements http.Flusher.
func (d *deadlineWriter) Flush() { d.start(); _ = d.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// ---------------------------------------------------------------- TCP guard

// tcpGuard checks what a TCP request must carry before any route sees it:
// a Host header naming this listener (a web page the browser was tricked
// into sending to 127.0.0.1 through DNS rebinding names its own host), then
// the bearer token, which the dashboard's assets (package webui) alone do
// not need. A refused request's connection closes after the answer.
func (s *Server) tcpGuard(bound *net.TCPAddr, next http.Handler) http.Handler {
	port := fmt.Sprint(bound.Port)
	hosts := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true, bound.IP.String(): true}
	allowed := fmt.Sprintf("localhost:%[1]s, 127.0.0.1:%[1]s or [::1]:%[1]s", port)
	if ip := bound.IP.String(); ip != "127.0.0.1" && ip != "::1" {
		allowed = net.JoinHostPort(ip, port) + ", " + allowed
	}
	want := sha256.Sum256([]byte(s.token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, hosts, port) {
			s.refused(reasonHost)
			s.warn.Warn("API TCP request refused: Host header is not the listener's own", "host", r.Host, "remote", r.RemoteAddr)
			s.reject(w, withCode(client.CodeForbidden, fmt.Errorf("Host %q refused: the TCP API answers only requests addressed to %s (a guard against DNS rebinding)", r.Host, allowed)))
			return
		}
		if s.ui != nil && webui.Serves(r.URL.Path) {
			// The dashboard's assets hold no data: every /v1 call its
			// pages make carries the token.
			s.ui.ServeHTTP(w, r)
			return
		}
		got := sha256.Sum256([]byte(bearerToken(r.Header.Get("Authorization"))))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.refused(reasonToken)
			s.warn.Warn("API TCP request refused: missing or wrong bearer token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="warren"`)
			s.reject(w, withCode(client.CodeUnauthorized, errors.New("missing or wrong bearer token (it is in the repo's api.token)")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header, the scheme in any case (RFC 9110 section 11.1), or "".
func bearerToken(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimLeft(tok, " ")
}

// hostAllowed reports whether a Host header names one of hosts on port (no
// port: 80).
func hostAllowed(h string, hosts map[string]bool, port string) bool {
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		host, p = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "80"
	}
	return host != "" && p == port && hosts[strings.ToLower(host)]
}

// reject answers a refused request and closes its connection: the client
// gets the error, and keeps nothing open on the daemon.
func (s *Server) reject(w http.ResponseWriter, err error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(rejectDrain))
	_ = rc.SetWriteDeadline(time.Now().Add(s.lim.writeTimeout))
	w.Header().Set("Connection", "close")
	writeError(w, err)
}
