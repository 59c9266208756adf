// Package api is the server of warren's local control API: HTTP/JSON under
// versioned paths (/v1/...), served on a unix socket (mode 0600) and
// optionally on a loopback TCP address guarded by a bearer token. Its wire
// types and Go client are package client; docs/api.md is its reference and
// docs/openapi.yaml its contract.
//
// The server converts library values to the client's wire types
// explicitly, so that renaming a library field cannot change /v1. Its
// files: server.go (lifecycle), routes.go (the route table and
// middleware), errors.go (error codes), body.go and bulk.go (request
// bodies), ndjson_writer.go (the streams), limits.go (connection caps and
// metrics), and one file of handlers per capability: node.go, msg.go,
// gossip.go, tunnel.go, and shutdown.go (POST /v1/shutdown).
package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/ratelog"
	"github.com/warren-p2p/warren/webui"
)

// ServerOptions configures a Server.
type ServerOptions struct {
	Logger *slog.Logger
	// Token is required as "Authorization: Bearer <token>" on TCP
	// listeners. The unix socket is guarded by its file mode instead.
	Token string
	// Limits overrides the node's api settings field by field (TCP is
	// ignored): a zero field keeps the node's config.API value.
	Limits config.API
	// Shutdown, when set, is called (once) by POST /v1/shutdown after its
	// answer is sent: the owner of the server (warren daemon) stops as on
	// SIGTERM, Closing the server. It must not block on that Close. Without
	// it the route answers 501 unsupported: a program embedding a Server
	// keeps its API from stopping it.
	Shutdown func()
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
	// ui is the web dashboard (package webui) the TCP listeners serve
	// under /ui/ when api.dashboard is on; nil otherwise.
	ui http.Handler

	shutdownHook func() // ServerOptions.Shutdown
	shutdownOnce sync.Once

	// beforeChmod, when set (by tests), runs in ServeUnix while the socket
	// listens at its private path, before it gets mode 0600.
	beforeChmod func(tmpPath string)

	// undeclared counts answers whose status their route does not declare
	// (see checkedWriter); tests require zero.
	undeclared atomic.Int64

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
		shutdownHook: opts.Shutdown,
		lim:          resolveLimits(opts.Limits, n.Config().API)}
	var err error
	if s.metrics, err = newAPIMetrics(n.Metrics()); err != nil {
		log.Error("API metrics are not exported", "err", err)
	}
	if n.Config().API.Dashboard {
		s.ui = webui.Handler()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.register(s.routes())
	return s
}

// SetToken sets the bearer token required on TCP listeners.
func (s *Server) SetToken(tok string) { s.token = tok }

// Handler returns the API without authentication, for the unix socket and tests.
func (s *Server) Handler() http.Handler { return s.mux }

// MaxUnixSocketPath is the longest unix socket path the system binds
// (sun_path holds 108 bytes with the terminating NUL).
const MaxUnixSocketPath = 107

// MaxRepoPathForSocket is the longest repo directory whose api.sock
// ServeUnix can bind: it binds in a private directory of the repo first
// ("<repo>/.sock<10 digits>/s") and moves the socket into place.
const MaxRepoPathForSocket = MaxUnixSocketPath - len("/.sock1234567890/s")

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
	if len(tmp) > MaxUnixSocketPath {
		return fmt.Errorf("API: unix socket %s: its path (%d bytes while it is made) is over the %d bytes a unix socket path may have; "+
			"use a repo with a shorter path (at most %d bytes; e.g. under /tmp or ~), or a symbolic link to it", path, len(tmp), MaxUnixSocketPath, MaxRepoPathForSocket)
	}
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
// Every request must carry a Host header naming the listener, and every
// request but those for the dashboard's static assets (api.dashboard) the
// bearer token; at most api.max_tcp_conns connections are open at once.
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
