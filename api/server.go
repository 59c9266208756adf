// Package api is warren's local control API: HTTP/JSON under versioned paths
// (/v1/...), served on a unix socket (mode 0600) and optionally on a loopback
// TCP address guarded by a bearer token, plus the Go client the CLI uses.
// docs/api.md is its reference.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/node"
)

// maxBody bounds the JSON bodies of the endpoints that carry no message
// (message endpoints size their bodies from max_message_size).
const maxBody = 80 << 20

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
}

// Server serves the control API of one node.
type Server struct {
	node    *warren.Node
	log     *slog.Logger
	token   string
	started time.Time
	mux     *http.ServeMux

	mu      sync.Mutex
	servers []*http.Server
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
	s := &Server{node: n, log: log, token: opts.Token, started: time.Now(), mux: http.NewServeMux()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.Handle("GET /metrics", promhttp.HandlerFor(s.node.Metrics, promhttp.HandlerOpts{}))
	m.HandleFunc("GET /v1/health", s.health)
	m.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, VersionInfo{Version: warren.Version, Go: runtime.Version()})
	})
	m.HandleFunc("GET /v1/id", s.id)
	m.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.node.Peers()))
	})
	m.HandleFunc("POST /v1/peers/connect", s.connect)
	m.HandleFunc("POST /v1/peers/disconnect", s.disconnect)
	m.HandleFunc("POST /v1/ping", s.ping)
	// Go's profiler, for "go tool pprof http://.../debug/pprof/profile"; as
	// trusted as the rest of the API (socket mode 0600, or the token).
	m.HandleFunc("GET /debug/pprof/", pprof.Index)
	m.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.extraRoutes()
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API endpoint %s %s (see docs/api.md)", r.Method, r.URL.Path))
	})
}

// SetToken sets the bearer token required on TCP listeners.
func (s *Server) SetToken(tok string) { s.token = tok }

// Handler returns the API without authentication, for the unix socket and tests.
func (s *Server) Handler() http.Handler { return s.mux }

// ServeUnix listens on a unix socket at path, readable and writable by the
// owner only.
func (s *Server) ServeUnix(path string) error {
	_ = os.Remove(path) // a socket left by a killed daemon; the repo lock says we own it
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("API: listen on unix socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("API: chmod %s: %w", path, err)
	}
	s.serve(l, s.mux)
	return nil
}

// ServeTCP listens on a loopback TCP address and returns the bound address.
// Every request must carry the bearer token.
func (s *Server) ServeTCP(addr string) (string, error) {
	if s.token == "" {
		return "", errors.New("API: refusing to serve on TCP without a token")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("API: listen on %s: %w", addr, err)
	}
	s.serve(l, s.requireToken(s.mux))
	return l.Addr().String(), nil
}

func (s *Server) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return s.ctx }}
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

func (s *Server) requireToken(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warren"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token (it is in the repo's api.token)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Close stops the listeners, ends streaming responses and waits for the
// servers to finish.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	s.wg.Wait()
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
	if !readJSON(w, r, &req) {
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
	if !readJSON(w, r, &req) {
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
	if !readJSON(w, r, &req) {
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

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body of %s: expected JSON of the documented form: %v", r.URL.Path, err))
		return false
	}
	return true
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
