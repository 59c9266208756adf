package api

// The API's defences against its clients: a cap on TCP connections, per-
// route read and write deadlines, the Host check against DNS rebinding and
// the bearer token on TCP, and the counters of what they refuse.
// docs/security.md ("Control API") lists every limit.

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/ratelog"
)

// maxHeaderBytes bounds the request line and headers of one request.
const maxHeaderBytes = 64 << 10

// rejectDrain is how long a refused request's unread body is drained
// before its connection closes.
const rejectDrain = time.Second

// Reasons of warren_api_requests_refused_total.
const (
	reasonHost         = "host"           // Host header not the listener's own
	reasonToken        = "token"          // missing or wrong bearer token
	reasonBodyTooLarge = "body_too_large" // 413
	reasonBodyTimeout  = "body_timeout"   // 408: the body did not arrive in time
	reasonBadBody      = "bad_body"       // 400: not one JSON object of the documented form
)

// limits are the resolved api settings of a Server.
type limits struct {
	maxTCPConns                                               int
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
}

// resolveLimits takes each setting from over when set, else from the node's
// config, else from the defaults.
func resolveLimits(over, node config.API) limits {
	def := config.Default().API
	pick := func(vs ...config.Duration) time.Duration {
		for _, v := range vs {
			if v > 0 {
				return v.Std()
			}
		}
		return 0
	}
	l := limits{
		readHeaderTimeout: pick(over.ReadHeaderTimeout, node.ReadHeaderTimeout, def.ReadHeaderTimeout),
		readTimeout:       pick(over.ReadTimeout, node.ReadTimeout, def.ReadTimeout),
		writeTimeout:      pick(over.WriteTimeout, node.WriteTimeout, def.WriteTimeout),
		idleTimeout:       pick(over.IdleTimeout, node.IdleTimeout, def.IdleTimeout),
	}
	for _, v := range []int{over.MaxTCPConns, node.MaxTCPConns, def.MaxTCPConns} {
		if v > 0 {
			l.maxTCPConns = v
			break
		}
	}
	return l
}

// apiMetrics are the API's Prometheus metrics.
type apiMetrics struct {
	tcpConns   prometheus.Gauge
	tcpRefused prometheus.Counter
	refused    *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) (*apiMetrics, error) {
	m := &apiMetrics{
		tcpConns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "warren", Subsystem: "api", Name: "tcp_conns",
			Help: "Open connections to the TCP API (at most api.max_tcp_conns)."}),
		tcpRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "warren", Subsystem: "api", Name: "tcp_conns_refused_total",
			Help: "TCP API connections closed at once because api.max_tcp_conns were open."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "warren", Subsystem: "api", Name: "requests_refused_total",
			Help: "API requests refused: host (Host header not the listener's own), token (missing or wrong bearer token), body_too_large (413), body_timeout (408), bad_body (400, not one JSON object of the documented form)."},
			[]string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	errs = append(errs, register(reg, &m.tcpConns), register(reg, &m.tcpRefused), register(reg, &m.refused))
	return m, errors.Join(errs...)
}

// register registers c, or takes the collector already registered under its
// name (a second Server of the same node shares the counters).
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("API: register metrics: %w", err)
	}
	return nil
}

func (s *Server) refused(reason string) { s.metrics.refused.WithLabelValues(reason).Inc() }

// ---------------------------------------------------------------- connections

// capListener accepts at most max connections at a time. One over the cap
// gets a one-line 503 and is closed at once, so a client that holds many
// connections cannot use up the daemon's file descriptors (and with them
// the owner's unix socket).
type capListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	s    *Server
}

// busyAnswer is what a connection over the cap reads before it is closed.
const busyAnswer = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.take() {
			l.s.metrics.tcpRefused.Inc()
			l.s.warn.Warn("API TCP connection refused: api.max_tcp_conns connections are open", "max", l.max, "remote", c.RemoteAddr().String())
			body := fmt.Sprintf(`{"error":"the TCP API already has %d connections open (api.max_tcp_conns); the unix socket is not limited"}`+"\n", l.max)
			// A fresh socket's send buffer is empty: this write does not
			// wait, and the deadline makes sure of it.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = fmt.Fprintf(c, busyAnswer, len(body), body)
			_ = c.Close()
			continue
		}
		l.s.metrics.tcpConns.Inc()
		return &capConn{Conn: c, l: l}, nil
	}
}

// take takes a slot, unless all max are taken. (Adding first and taking
// back would let the count read max+1 for a moment.)
func (l *capListener) take() bool {
	for {
		n := l.open.Load()
		if n >= l.max {
			return false
		}
		if l.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// capConn gives its slot back when it closes.
type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.s.metrics.tcpConns.Dec()
	})
	return err
}

// CloseWrite lets net/http half-close the connection, as it does a TCP one.
func (c *capConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// tcpConns is the number of open TCP API connections.
func (s *Server) tcpConns() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, l := range s.capped {
		n += l.open.Load()
	}
	return n
}

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

// handle registers h under pattern with the deadlines of kind.
func (s *Server) handle(pattern string, kind routeKind, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, s.bound(kind, h))
}

// bound applies the deadlines of kind to h's requests. The server itself has
// no ReadTimeout or WriteTimeout: they cannot tell a stream from a call.
func (s *Server) bound(kind routeKind, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
// the bearer token. A refused request's connection closes after the answer.
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
			s.reject(w, r, http.StatusForbidden, fmt.Errorf("Host %q refused: the TCP API answers only requests addressed to %s (a guard against DNS rebinding)", r.Host, allowed))
			return
		}
		got := sha256.Sum256([]byte(bearerToken(r.Header.Get("Authorization"))))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.refused(reasonToken)
			s.warn.Warn("API TCP request refused: missing or wrong bearer token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="warren"`)
			s.reject(w, r, http.StatusUnauthorized, errors.New("missing or wrong bearer token (it is in the repo's api.token)"))
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
func (s *Server) reject(w http.ResponseWriter, r *http.Request, code int, err error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(rejectDrain))
	_ = rc.SetWriteDeadline(time.Now().Add(s.lim.writeTimeout))
	w.Header().Set("Connection", "close")
	writeError(w, code, err)
}

// ---------------------------------------------------------------- logging

// httpErrorLog carries net/http's own error lines (accept errors, bad TLS,
// panics) to the rate-limited log: a client can cause them.
type httpErrorLog struct{ warn *ratelog.Logger }

func (e httpErrorLog) Write(p []byte) (int, error) {
	e.warn.Warn("API HTTP server error", "err", strings.TrimSpace(string(p)))
	return len(p), nil
}
