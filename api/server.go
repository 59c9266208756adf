// Package api is warren's local control API: HTTP/JSON under versioned paths
// (/v1/...), served on a unix socket (mode 0600) and optionally on a loopback
// TCP address guarded by a bearer token, plus the Go client the CLI uses.
// docs/api.md is its reference.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/ratelog"
	"github.com/warren-p2p/warren/node"
)

// maxRecord bounds one record of an NDJSON stream the client reads. The
// client cannot know the daemon's max_message_size, so it allows the largest
// any configuration accepts (config.MaxDirectMessageSize; topic messages are
// smaller), base64-encoded, plus generous room for the record's other
// fields: every message a daemon can accept can be streamed.
const maxRecord = (config.MaxDirectMessageSize+2)/3*4 + 1<<20

// ServerOptions configures a Server.
type ServerOptions struct {
	Logger *slog.Logger
	// Token is required as "Authorization: Bearer <token>" on TCP
	// listeners. The unix socket is guarded by its file mode instead.
	Token string
	// Limits overrides the node's api settings field by field (TCP is
	// ignored): a zero field keeps the node's config.API value.
	Limits config.API
}

// Server serves the control API of one node.
type Server struct {
	node    *warren.Node
	log     *slog.Logger
	warn    *ratelog.Logger // warnings a client can cause
	token   string
	started time.Time
	mux     *http.ServeMux
	lim     limits
	metrics *apiMetrics

	// beforeChmod, when set (by tests), runs in ServeUnix while the socket
	// listens at its private path, before it gets mode 0600.
	beforeChmod func(tmpPath string)

	mu      sync.Mutex
	servers []*http.Server
	capped  []*capListener
	sockets []string // unix socket paths to remove on Close
	wg      sync.WaitGroup
	ctx     context.Context // cancelled on Close: ends streaming responses
	cancel  context.CancelFunc
}

// NewServer builds the API of a node. Nothing listens until ServeUnix or ServeTCP.
func NewServer(n *warren.Node, opts ServerOptions) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{node: n, log: log, warn: ratelog.New(log, 0), token: opts.Token, started: time.Now(), mux: http.NewServeMux(),
		lim: resolveLimits(opts.Limits, n.Config().API)}
	var err error
	if s.metrics, err = newAPIMetrics(n.Metrics); err != nil {
		log.Error("API metrics are not exported", "err", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	return s
}

func (s *Server) routes() {
	metrics := promhttp.HandlerFor(s.node.Metrics, promhttp.HandlerOpts{})
	s.handle("GET /metrics", kindCall, metrics.ServeHTTP)
	s.handle("GET /v1/health", kindCall, s.health)
	s.handle("GET /v1/version", kindCall, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, VersionInfo{Version: warren.Version, Go: runtime.Version()})
	})
	s.handle("GET /v1/id", kindCall, s.id)
	s.handle("GET /v1/peers", kindCall, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.node.Peers()))
	})
	s.handle("POST /v1/peers/connect", kindCall, s.connect)
	s.handle("POST /v1/peers/disconnect", kindCall, s.disconnect)
	s.handle("POST /v1/ping", kindCall, s.ping)
	// Go's profiler, for "go tool pprof http://.../debug/pprof/profile"; as
	// trusted as the rest of the API (socket mode 0600, or the token). A
	// profile or trace is written when it ends: the write deadline starts
	// then.
	s.handle("GET /debug/pprof/", kindCall, pprof.Index)
	s.handle("GET /debug/pprof/cmdline", kindCall, pprof.Cmdline)
	s.handle("GET /debug/pprof/profile", kindCall, pprof.Profile)
	s.handle("GET /debug/pprof/symbol", kindCall, pprof.Symbol)
	s.handle("GET /debug/pprof/trace", kindCall, pprof.Trace)
	s.extraRoutes()
	s.handle("/", kindCall, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API endpoint %s %s (see docs/api.md)", r.Method, r.URL.Path))
	})
}

// SetToken sets the bearer token required on TCP listeners.
func (s *Server) SetToken(tok string) { s.token = tok }

// Handler returns the API without authentication, for the unix socket and tests.
func (s *Server) Handler() http.Handler { return s.mux }

// ServeUnix listens on a unix socket at path, readable and writable by the
// owner only.
//
// The socket is never connectable by anyone else: it is bound inside a new
// directory of mode 0700 (whatever the umask), given mode 0600 there, and
// only then renamed to path. Binding at path and chmodding after would leave
// it open, for a moment, to every local user the umask lets in.
func (s *Server) ServeUnix(path string) error {
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".sock")
	if err != nil {
		return fmt.Errorf("API: private directory for the unix socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmpDir)
	if err := os.Chmod(tmpDir, 0o700); err != nil { // MkdirTemp's mode, whatever was inherited
		return fmt.Errorf("API: private directory for the unix socket %s: %w", path, err)
	}
	tmp := filepath.Join(tmpDir, "s")
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return fmt.Errorf("API: listen on unix socket %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // it moves: Close removes it at path
	if s.beforeChmod != nil {
		s.beforeChmod(tmp)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("API: chmod unix socket %s: %w", path, err)
	}
	_ = os.Remove(path) // a socket left by a killed daemon; the repo lock says we own it
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return fmt.Errorf("API: move unix socket into place at %s: %w", path, err)
	}
	s.mu.Lock()
	s.sockets = append(s.sockets, path)
	s.mu.Unlock()
	s.serve(l, s.mux)
	return nil
}

// ServeTCP listens on a loopback TCP address and returns the bound address.
// Every request must carry the bearer token and a Host header naming the
// listener; at most api.max_tcp_conns connections are open at once.
func (s *Server) ServeTCP(addr string) (string, error) {
	if s.token == "" {
		return "", errors.New("API: refusing to serve on TCP without a token")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("API: listen on %s: %w", addr, err)
	}
	cl := &capListener{Listener: l, max: int64(s.lim.maxTCPConns), s: s}
	s.mu.Lock()
	s.capped = append(s.capped, cl)
	s.mu.Unlock()
	s.serve(cl, s.tcpGuard(l.Addr().(*net.TCPAddr), s.mux))
	return l.Addr().String(), nil
}

// serve serves h on l. The server has no ReadTimeout or WriteTimeout: each
// route sets its own deadlines (see bound).
func (s *Server) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.lim.readHeaderTimeout,
		IdleTimeout:       s.lim.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          stdlog.New(httpErrorLog{s.warn}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("API server stopped", "addr", l.Addr(), "err", err)
		}
	}()
}

// Close stops the listeners, ends streaming responses and waits for the
// servers to finish.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	servers, sockets := s.servers, s.sockets
	s.servers, s.sockets = nil, nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	s.wg.Wait()
	for _, p := range sockets {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("API: remove unix socket: %w", err))
		}
	}
	s.warn.Close()
	return errors.Join(errs...)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", ID: s.node.ID().String(),
		Peers: len(s.node.Host().Network().Peers()), UptimeS: time.Since(s.started).Seconds()})
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	pub, _ := crypto.MarshalPublicKey(s.node.Host().Peerstore().PubKey(s.node.ID()))
	writeJSON(w, http.StatusOK, IDInfo{
		ID: s.node.ID().String(), Addrs: nonNil(s.node.Addrs()), Network: s.node.Config().Network,
		PublicKey: base64.StdEncoding.EncodeToString(pub), Agent: "warren/" + warren.Version,
	})
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	if !s.readBody(w, r, controlLimit, "docs/api.md", &req) {
		return
	}
	if _, err := node.ParseTarget(req.Addr); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ai, err := s.node.Connect(r.Context(), req.Addr)
	if err != nil {
		writeError(w, statusFor(err), err)
		return
	}
	addrs := make([]string, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	writeJSON(w, http.StatusOK, ConnectResult{ID: ai.ID.String(), Addrs: addrs})
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	var req DisconnectRequest
	if !s.readBody(w, r, controlLimit, "docs/api.md", &req) {
		return
	}
	p, err := node.ParsePeerID(req.Peer)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.node.Disconnect(p); err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	var req PingRequest
	if !s.readBody(w, r, controlLimit, "docs/api.md", &req) {
		return
	}
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > 1000 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("ping count %d: expected 1 to 1000", req.Count))
		return
	}
	p, err := node.ParsePeerID(req.Peer)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rtts, err := s.node.Ping(r.Context(), p, req.Count)
	if err != nil {
		writeError(w, statusFor(err), err)
		return
	}
	res := PingResult{Peer: p.String()}
	var sum float64
	for _, d := range rtts {
		ms := float64(d.Microseconds()) / 1000
		res.RTTMS = append(res.RTTMS, ms)
		sum += ms
	}
	res.AvgMS = sum / float64(len(rtts))
	writeJSON(w, http.StatusOK, res)
}

// badInput marks errors caused by the request rather than the node.
type badInput struct{ error }

func (b badInput) Unwrap() error { return b.error }

// BadInput wraps an error so the API answers 400.
func BadInput(err error) error { return badInput{err} }

func statusFor(err error) int {
	var b badInput
	switch {
	case errors.As(err, &b):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, Error{Error: err.Error()})
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
