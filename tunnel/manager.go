package tunnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren/internal/ratelog"
)

// ErrClosed is returned by Manager methods after Close.
var ErrClosed = errors.New("tunnel: manager is closed")

// Manager owns the tunnels of one libp2p host.
type Manager struct {
	h    host.Host
	opts Options
	log  *slog.Logger
	rlog *ratelog.Logger // warnings a remote peer (or a local client) can cause
	met  *metrics
	// repoDir is Options.RepoDir, absolute with symlinks resolved; "" when
	// unset.
	repoDir string
	bufs    *bufPool

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Manager starts or adopts

	// opMu serialises configuration changes (Listen, Forward,
	// CloseTunnels, Restore, Close) and state file writes.
	opMu sync.Mutex

	mu       sync.Mutex // guards the fields below and tunnel.err/stop
	closed   bool
	retrying bool // retryLoop runs
	nextID   uint64
	tunnels  map[uint64]*tunnel
	pending  []savedTunnel // loaded from StatePath, not yet restored
	nextSID  uint64
	streams  map[uint64]*activeStream
}

// tunnel is one listen or forward tunnel.
type tunnel struct {
	id        uint64
	kind      Kind
	proto     protocol.ID
	transport string
	lspec     ListenSpec   // kind == KindListen
	saved     *savedTunnel // a placeholder's entry as read, saved back unchanged
	fspec     ForwardSpec  // kind == KindForward; ListenAddr is the bound address once started

	// listen
	target endpoint
	allow  map[peer.ID]struct{}
	// forward
	bind      endpoint
	peer      peer.ID
	peerAddrs []ma.Multiaddr

	listenAddr ma.Multiaddr // display (Info.ListenAddress); nil if a saved one does not parse
	targetAddr ma.Multiaddr // display (Info.TargetAddress); nil if a saved one does not parse

	maxConns int          // effective cap on concurrent connections
	lim      *connLimiter // listen: streams served; TCP/unix forward: clients

	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool // set under Manager.mu when the tunnel is being closed
	stop   func()      // releases the listener or stream handler; guarded by Manager.mu
	err    string      // non-empty when not running; guarded by Manager.mu

	active                                     atomic.Int64
	bytesIn, bytesOut, opened, refused, failed atomic.Uint64
	dropped, limitRefused                      atomic.Uint64
	lastErr                                    atomic.Pointer[string] // see fail
	udpSessions                                atomic.Int64
	udpQueued                                  *atomic.Int64 // a UDP forward's queued bytes, once started
	met                                        tunnelMetrics
}

func (t *tunnel) udpQueuedBytes() int64 {
	if q := t.udpQueued; q != nil {
		return q.Load()
	}
	return 0
}

// refuse counts a stream or client refused for reason. The metrics move
// first: whoever sees the count in Info finds them up to date too.
func (t *tunnel) refuse(reason string) {
	t.met.refusedBy(reason).Inc()
	if reason == reasonAllow {
		t.met.refused.Inc()
		t.refused.Add(1)
	} else {
		t.limitRefused.Add(1)
	}
}

func (t *tunnel) temp() bool {
	if t.kind == KindListen {
		return t.lspec.Temp
	}
	return t.fspec.Temp
}

// NewManager creates a Manager for h. If opts.StatePath names an existing
// state file it is loaded (a corrupt file is an error, never overwritten);
// call Restore to start the saved tunnels.
func NewManager(ctx context.Context, h host.Host, opts Options) (*Manager, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tunnel: new manager: %w", err)
	}
	if h == nil {
		return nil, errors.New("tunnel: host is nil")
	}
	if opts.DialTimeout < 0 || opts.UDPIdleTimeout < 0 {
		return nil, fmt.Errorf("tunnel: negative timeout in options (DialTimeout %v, UDPIdleTimeout %v)", opts.DialTimeout, opts.UDPIdleTimeout)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.UDPIdleTimeout == 0 {
		opts.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if opts.MaxConns < 0 || opts.MaxConns > MaxMaxConns {
		return nil, fmt.Errorf("tunnel: Options.MaxConns %d: expected 0 (default %d) to %d", opts.MaxConns, DefaultMaxConns, MaxMaxConns)
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = DefaultMaxConns
	}
	var repoDir string
	if opts.RepoDir != "" {
		abs, err := filepath.Abs(opts.RepoDir)
		if err != nil {
			return nil, fmt.Errorf("tunnel: repo directory %q: %w", opts.RepoDir, err)
		}
		repoDir = resolvePath(abs)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	var pending []savedTunnel
	if opts.StatePath != "" {
		if pending, err = loadState(opts.StatePath); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		h:       h,
		opts:    opts,
		log:     log,
		rlog:    ratelog.New(log, 0),
		repoDir: repoDir,
		met:     met,
		bufs:    newBufPool(),
		ctx:     ctx,
		cancel:  cancel,
		tunnels: make(map[uint64]*tunnel),
		pending: pending,
		streams: make(map[uint64]*activeStream),
	}, nil
}

// Tunnel is a tunnel started by Listen or Forward: its Info as it
// started (Manager.Info has the live counters) and Close. The tunnel runs
// until Close, CloseTunnels or the Manager's Close, whichever comes first.
type Tunnel struct {
	Info
	m *Manager
}

// Close closes the tunnel, resets its connections and removes it from the
// state file. It is idempotent, and nil once the Manager is closed.
func (t *Tunnel) Close() error {
	_, _, err := t.m.CloseTunnels(Filter{ID: t.ID})
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// handle is the Tunnel of a tunnel just added.
func (m *Manager) handle(in Info, err error) (*Tunnel, error) {
	if err != nil {
		return nil, err
	}
	return &Tunnel{Info: in, m: m}, nil
}

// Listen starts a listen tunnel: streams from remote peers on spec.Protocol
// are connected to spec.Target.
func (m *Manager) Listen(ctx context.Context, spec ListenSpec) (*Tunnel, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tunnel: listen %q: %w", spec.Protocol, err)
	}
	t, err := m.newListenTunnel(spec)
	if err != nil {
		return nil, err
	}
	return m.handle(m.add(t))
}

// Forward starts a forward tunnel: connections accepted on spec.ListenAddr
// are carried over new streams to spec.Peer on spec.Protocol.
func (m *Manager) Forward(ctx context.Context, spec ForwardSpec) (*Tunnel, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tunnel: forward %q: %w", spec.Protocol, err)
	}
	t, err := m.newForwardTunnel(spec)
	if err != nil {
		return nil, err
	}
	return m.handle(m.add(t))
}

func (m *Manager) newListenTunnel(spec ListenSpec) (*tunnel, error) {
	proto, err := validateProtocol(spec.Protocol, spec.AllowCustomProtocol)
	if err != nil {
		return nil, err
	}
	target, err := parseEndpoint("target", spec.Target, false)
	if err != nil {
		return nil, err
	}
	if err := m.checkUnixPath("target", target); err != nil {
		return nil, err
	}
	maxConns, err := m.maxConns(spec.MaxConns)
	if err != nil {
		return nil, err
	}
	if spec.ReportPeerID && target.transport == TransportUDP {
		return nil, invalidf("tunnel: target %q: report_peer_id (--report-peer-id) needs a TCP or unix target, not UDP", spec.Target)
	}
	var allow map[peer.ID]struct{}
	if len(spec.Allow) > 0 {
		allow = make(map[peer.ID]struct{}, len(spec.Allow))
		for i, p := range spec.Allow {
			if _, err := peer.IDFromBytes([]byte(p)); err != nil {
				return nil, fmt.Errorf("tunnel: allow[%d] %q: not a valid peer ID: %w", i, p.String(), err)
			}
			allow[p] = struct{}{}
		}
	}
	spec.Allow = slices.Clone(spec.Allow)
	return &tunnel{
		kind:       KindListen,
		proto:      proto,
		transport:  target.transport,
		lspec:      spec,
		target:     target,
		allow:      allow,
		listenAddr: p2pAddr(m.h.ID()),
		targetAddr: target.maddr,
		maxConns:   maxConns,
		lim:        newConnLimiter(maxConns, peerShare(maxConns, len(allow))),
	}, nil
}

func (m *Manager) newForwardTunnel(spec ForwardSpec) (*tunnel, error) {
	proto, err := validateProtocol(spec.Protocol, spec.AllowCustomProtocol)
	if err != nil {
		return nil, err
	}
	bind, err := parseEndpoint("listen address", spec.ListenAddr, true)
	if err != nil {
		return nil, err
	}
	if err := m.checkUnixPath("listen address", bind); err != nil {
		return nil, err
	}
	maxConns, err := m.maxConns(spec.MaxConns)
	if err != nil {
		return nil, err
	}
	pid, addrs := spec.Peer, spec.Addrs
	if pid == "" {
		return nil, invalidf("tunnel: peer is empty: expected a peer ID")
	}
	if _, err := peer.IDFromBytes([]byte(pid)); err != nil {
		return nil, invalidf("tunnel: peer %q: not a valid peer ID: %v", pid.String(), err)
	}
	if pid == m.h.ID() {
		return nil, invalidf("tunnel: peer %s is this host: expected a remote peer", pid)
	}
	return &tunnel{
		kind:       KindForward,
		proto:      proto,
		transport:  bind.transport,
		fspec:      spec,
		bind:       bind,
		peer:       pid,
		peerAddrs:  addrs,
		listenAddr: bind.maddr,
		targetAddr: p2pAddr(pid),
		maxConns:   maxConns,
		lim:        newConnLimiter(maxConns, 0), // clients are local: no per-peer share
	}, nil
}

// add checks t against existing tunnels, starts it, records it and saves
// the state file.
func (m *Manager) add(t *tunnel) (Info, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.conflict(t); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Info{}, ErrClosed
	}
	m.nextID++
	t.id = m.nextID
	m.mu.Unlock()
	m.prepare(t)
	if err := m.start(t); err != nil {
		t.cancel()
		return Info{}, err
	}
	m.mu.Lock()
	m.tunnels[t.id] = t
	m.mu.Unlock()
	if err := m.saveLocked(); err != nil {
		m.mu.Lock()
		delete(m.tunnels, t.id)
		t.closed.Store(true)
		m.mu.Unlock()
		m.shutdownTunnel(t)
		m.abortClosedStreams() // clients that connected meanwhile
		return Info{}, err
	}
	m.log.Info("tunnel: started", "id", t.id, "kind", t.kind, "protocol", string(t.proto),
		"listen", t.listenAddr, "target", t.targetAddr)
	return m.Info(t.id)
}

// conflict refuses a second listener on a protocol or a second forward on a
// listen address. Called with opMu held.
func (m *Manager) conflict(t *tunnel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.tunnels {
		if o.kind != t.kind {
			continue
		}
		switch t.kind {
		case KindListen:
			if o.proto == t.proto {
				return existsf("tunnel: listen %q: protocol already has a listener (tunnel %d, target %s); close it first", t.proto, o.id, o.targetAddr)
			}
		case KindForward:
			if o.transport == t.transport && (o.listenAddr.Equal(t.listenAddr) || o.bind.maddr.Equal(t.listenAddr)) && !isPortZero(t.bind) {
				return existsf("tunnel: forward %q: listen address %s is already used by tunnel %d (protocol %s); close it first", t.proto, t.listenAddr, o.id, o.proto)
			}
		}
	}
	return nil
}

func isPortZero(e endpoint) bool {
	if e.transport == TransportUnix {
		return false
	}
	_, port, err := net.SplitHostPort(e.address)
	return err == nil && port == "0"
}

// prepare gives t its context and metrics.
func (m *Manager) prepare(t *tunnel) {
	t.ctx, t.cancel = context.WithCancel(m.ctx)
	t.met = m.met.forTunnel(t.id, string(t.proto), string(t.kind))
}

// start binds t's listener or stream handler. Called with opMu held.
func (m *Manager) start(t *tunnel) error {
	if t.kind == KindListen {
		return m.startListen(t)
	}
	return m.startForward(t)
}

// Info returns the current description of tunnel id.
func (m *Manager) Info(id uint64) (Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tunnels[id]
	if !ok {
		return Info{}, fmt.Errorf("tunnel: no tunnel with id %d", id)
	}
	return m.infoLocked(t), nil
}

func (m *Manager) infoLocked(t *tunnel) Info {
	in := Info{
		ID:               t.id,
		Kind:             t.kind,
		Transport:        t.transport,
		Protocol:         t.proto,
		ListenAddress:    t.listenAddr,
		TargetAddress:    t.targetAddr,
		MaxConns:         t.maxConns,
		ActiveStreams:    int(t.active.Load()),
		BytesIn:          t.bytesIn.Load(),
		BytesOut:         t.bytesOut.Load(),
		Opened:           t.opened.Load(),
		Refused:          t.refused.Load(),
		Failed:           t.failed.Load(),
		LastError:        t.lastError(),
		LimitRefused:     t.limitRefused.Load(),
		DroppedDatagrams: t.dropped.Load(),
		UDPSessions:      int(t.udpSessions.Load()),
		UDPQueuedBytes:   t.udpQueuedBytes(),
		Error:            t.err,
	}
	if t.kind == KindListen {
		in.ReportPeerID = t.lspec.ReportPeerID
		in.AllowCustomProtocol = t.lspec.AllowCustomProtocol
		in.Temp = t.lspec.Temp
		in.Allow = slices.Clone(t.lspec.Allow)
	} else {
		in.AllowCustomProtocol = t.fspec.AllowCustomProtocol
		in.Temp = t.fspec.Temp
	}
	return in
}

// List describes every tunnel, including ones that failed to restore, in
// creation order.
func (m *Manager) List() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.tunnels))
	for _, t := range m.tunnels {
		out = append(out, m.infoLocked(t))
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Streams describes every active tunnelled connection, oldest first.
func (m *Manager) Streams() []StreamInfo {
	m.mu.Lock()
	out := make([]StreamInfo, 0, len(m.streams))
	for _, a := range m.streams {
		out = append(out, a.info())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b StreamInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// CloseStream resets one tunnelled connection (both the stream and the
// local connection).
func (m *Manager) CloseStream(id uint64) error {
	m.mu.Lock()
	a, ok := m.streams[id]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("tunnel: close stream %d: no active stream with that id (see warren tunnel streams)", id)
	}
	a.abort(errStreamClosed)
	return nil
}

// CloseAllStreams resets every tunnelled connection and returns how many.
func (m *Manager) CloseAllStreams() int {
	m.mu.Lock()
	all := make([]*activeStream, 0, len(m.streams))
	for _, a := range m.streams {
		all = append(all, a)
	}
	m.mu.Unlock()
	for _, a := range all {
		a.abort(errStreamClosed)
	}
	return len(all)
}

// CloseTunnels closes the tunnels matching f, resets their active
// connections and removes them from the state file. It returns how many
// tunnels and connections were closed. An empty filter is an error.
func (m *Manager) CloseTunnels(f Filter) (tunnels, streams int, err error) {
	if err := f.validate(); err != nil {
		return 0, 0, err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, 0, ErrClosed
	}
	var victims []*tunnel
	for id, t := range m.tunnels {
		if f.match(t) {
			victims = append(victims, t)
			delete(m.tunnels, id)
			t.closed.Store(true)
		}
	}
	m.mu.Unlock()
	for _, t := range victims {
		m.shutdownTunnel(t)
		m.log.Info("tunnel: closed", "id", t.id, "kind", t.kind, "protocol", string(t.proto))
	}
	n := m.abortClosedStreams()
	if len(victims) > 0 {
		err = m.saveLocked()
	}
	return len(victims), n, err
}

// abortClosedStreams resets the connections of closed tunnels and returns
// how many there were.
func (m *Manager) abortClosedStreams() int {
	m.mu.Lock()
	var conns []*activeStream
	for _, a := range m.streams {
		if a.t.closed.Load() {
			conns = append(conns, a)
		}
	}
	m.mu.Unlock()
	for _, a := range conns {
		a.abort(errTunnelClosed)
	}
	return len(conns)
}

// shutdownTunnel stops accepting on t and cancels its pending dials. Active
// connections are handled by the caller.
func (m *Manager) shutdownTunnel(t *tunnel) {
	t.closed.Store(true)
	m.mu.Lock()
	stop := t.stop
	t.stop = nil
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
	if t.cancel != nil {
		t.cancel()
	}
	m.met.forget(t.id, string(t.proto), string(t.kind))
}

// Close stops every tunnel, resets every connection and waits for all the
// Manager's goroutines to end. Saved state is kept for the next Restore.
func (m *Manager) Close() error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	tunnels := make([]*tunnel, 0, len(m.tunnels))
	for _, t := range m.tunnels {
		t.closed.Store(true)
		tunnels = append(tunnels, t)
	}
	conns := make([]*activeStream, 0, len(m.streams))
	for _, a := range m.streams {
		conns = append(conns, a)
	}
	m.mu.Unlock()
	for _, t := range tunnels {
		m.shutdownTunnel(t)
	}
	for _, a := range conns {
		a.abort(errManagerClosed)
	}
	m.cancel()
	m.wg.Wait()
	return m.rlog.Close()
}

// enter registers a goroutine the Manager did not start (a libp2p stream
// handler) with the WaitGroup; false means the Manager is closed.
func (m *Manager) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	return true
}

// register records a new tunnelled connection; nil means the tunnel or
// Manager is closing and the caller must tear the connection down.
//
// register owns release (may be nil): it is called when the connection is
// unregistered, or at once when register returns nil.
func (m *Manager) register(t *tunnel, s network.Stream, local net.Conn, laddr ma.Multiaddr, release func()) *activeStream {
	remote := s.Conn().RemotePeer()
	a := &activeStream{
		m:       m,
		t:       t,
		s:       s,
		local:   local,
		peer:    remote,
		laddr:   laddr,
		raddr:   s.Conn().RemoteMultiaddr().Encapsulate(p2pAddr(remote)),
		opened:  time.Now(),
		done:    make(chan struct{}),
		release: release,
	}
	a.touch()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || t.closed.Load() {
		if release != nil {
			release()
		}
		return nil
	}
	m.nextSID++
	a.id = m.nextSID
	m.streams[a.id] = a
	t.active.Add(1)
	t.opened.Add(1)
	t.met.active.Inc()
	t.met.opened.Inc()
	return a
}

func (m *Manager) unregister(a *activeStream) {
	m.mu.Lock()
	_, ok := m.streams[a.id]
	delete(m.streams, a.id)
	m.mu.Unlock()
	if ok {
		a.t.active.Add(-1)
		a.t.met.active.Dec()
		if a.release != nil {
			a.release()
		}
	}
}

// maxConns is the effective cap for a spec's MaxConns.
func (m *Manager) maxConns(n int) (int, error) {
	switch {
	case n < 0 || n > MaxMaxConns:
		return 0, invalidf("tunnel: max_conns %d: expected 0 (the node default, %d) to %d", n, m.opts.MaxConns, MaxMaxConns)
	case n == 0:
		return m.opts.MaxConns, nil
	}
	return n, nil
}

// maxLastError bounds the bytes of a tunnel's last error kept for List.
const maxLastError = 1024

// fail counts a connection that could not be established and keeps its
// error (at most maxLastError bytes) as the tunnel's last one. The error
// and the metric come first: whoever sees the count in Info finds them.
func (t *tunnel) fail(err error) {
	if err != nil {
		s := strings.Join(strings.Fields(err.Error()), " ")
		if len(s) > maxLastError {
			s = strings.ToValidUTF8(s[:maxLastError], "") + "…"
		}
		t.lastErr.Store(&s)
	}
	t.met.failed.Inc()
	t.failed.Add(1)
}

// lastError is the error of the tunnel's last failed connection, or "".
func (t *tunnel) lastError() string {
	if p := t.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (f Filter) validate() error {
	some := f.ID != 0 || f.Protocol != "" || len(f.ListenAddress) > 0 || len(f.TargetAddress) > 0
	switch {
	case f.All && some:
		return invalidf("tunnel close: all (--all) cannot be combined with id, protocol (--protocol), listen_address (--listen-address) or target_address (--target-address)")
	case !f.All && !some:
		return invalidf("tunnel close: nothing to match: give a tunnel id (from 'warren tunnel ls'), all (--all), or at least one of protocol (--protocol), listen_address (--listen-address), target_address (--target-address)")
	}
	return nil
}

// anyPort reports whether a listen address asks for any free port (0).
func anyPort(m ma.Multiaddr) bool {
	for _, code := range []int{ma.P_TCP, ma.P_UDP} {
		if v, err := m.ValueForProtocol(code); err == nil && v == "0" {
			return true
		}
	}
	return false
}

func (f Filter) match(t *tunnel) bool {
	if f.All {
		return true
	}
	if f.ID != 0 && f.ID != t.id {
		return false
	}
	if f.Protocol != "" && f.Protocol != t.proto {
		return false
	}
	if want := f.ListenAddress; len(want) > 0 {
		// The address ls shows (a port-0 forward's real port), or the
		// address as the forward was asked for unless that was port 0:
		// "/tcp/0" must not name every port-0 forward at once.
		requested := t.fspec.ListenAddr
		if t.kind == KindForward && t.bind.maddr != nil {
			requested = t.bind.maddr
		}
		byRequest := t.kind == KindForward && len(requested) > 0 && !anyPort(requested) && want.Equal(requested)
		if !want.Equal(t.listenAddr) && !byRequest {
			return false
		}
	}
	if want := f.TargetAddress; len(want) > 0 {
		ok := want.Equal(t.targetAddr)
		if t.kind == KindForward && len(t.targetAddr) > 0 {
			// The peer as it was given: one of its addresses, then /p2p/<id>.
			for _, a := range t.peerAddrs {
				ok = ok || want.Equal(a.Encapsulate(t.targetAddr))
			}
		} else {
			ok = ok || want.Equal(t.lspec.Target)
		}
		if !ok {
			return false
		}
	}
	return true
}
