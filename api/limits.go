package api

// The API's defences against its clients: a cap on TCP connections, per-
// route read and write deadlines, the Host check against DNS rebinding and
// the bearer token on TCP, and the counters of what they refuse.
// docs/security.md ("Control API") lists every limit.

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/promreg"
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
	if err := errors.Join(promreg.Register(reg, &m.tcpConns), promreg.Register(reg, &m.tcpRefused), promreg.Register(reg, &m.refused)); err != nil {
		return m, fmt.Errorf("API: register metrics: %w", err)
	}
	return m, nil
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
			body := fmt.Sprintf(`{"error":"the TCP API already has %d connections open (api.max_tcp_conns); the unix socket is not limited","code":"unavailable"}`+"\n", l.max)
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

// ---------------------------------------------------------------- logging

// httpErrorLog carries net/http's own error lines (accept errors, bad TLS,
// panics) to the rate-limited log: a client can cause them.
type httpErrorLog struct{ warn *ratelog.Logger }

func (e httpErrorLog) Write(p []byte) (int, error) {
	e.warn.Warn("API HTTP server error", "err", strings.TrimSpace(string(p)))
	return len(p), nil
}
