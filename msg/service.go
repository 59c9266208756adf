package msg

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/warren-p2p/warren/internal/netname"
	"github.com/warren-p2p/warren/internal/ratelog"
)

// Defaults for Options.
const (
	DefaultNetwork               = netname.Default
	DefaultMaxMessageSize        = 4 << 20
	MaxMaxMessageSize            = 64 << 20 // config's messages.max_message_size bound
	DefaultSendQueue             = 4096
	DefaultRequestTimeout        = 10 * time.Second
	DefaultOpenTimeout           = 15 * time.Second
	DefaultReachTimeout          = 30 * time.Second
	DefaultMaxConcurrentHandlers = 64
	DefaultMaxHandlersPerPeer    = 8
	DefaultReplyTimeout          = 2 * time.Second
	DefaultMaxStreamsPerPeer     = 8
	DefaultSubscribeMaxBytes     = 16 << 20
	DefaultFrameGrace            = 10 * time.Second
	DefaultFrameMinRate          = 64 << 10
)

// ServiceName is the resource-manager service of the msg streams: every
// stream of the protocol, inbound and outbound, joins it, so libp2p enforces
// the limits ResourceLimits computes.
const ServiceName = "warren.msg"

// Options configure a Service. The zero value is usable.
type Options struct {
	// Network separates warren networks: the protocol is
	// /warren/<Network>/msg/1.0.0, so nodes of different networks never
	// exchange messages. See package config's network for the rule; default
	// DefaultNetwork ("warren", as config's).
	Network string
	// MaxMessageSize is the largest payload in bytes, checked on Send and,
	// from the length prefix, before reading a frame (default 4 MiB, at most
	// MaxMaxMessageSize, 64 MiB). All nodes of a network should use the same value.
	MaxMessageSize int
	// Logger receives the service's logs (default: discarded).
	Logger *slog.Logger
	// Registerer, if non-nil, gets the service's Prometheus collectors;
	// Close unregisters them.
	Registerer prometheus.Registerer
	// SendQueue bounds the messages queued per peer and per priority
	// (default 4096). Send blocks while the queue is full.
	SendQueue int
	// RequestTimeout applies to Request when its ctx has no deadline
	// (default 10 s).
	RequestTimeout time.Duration
	// OpenTimeout bounds opening the stream to a peer (default 15 s).
	OpenTimeout time.Duration
	// Reach, when set, is called before the stream that carries the local
	// application's messages to a peer is opened (the first Send or
	// Request, and the first after that stream failed), with the caller's
	// context bounded by ReachTimeout. It connects to p and returns nil
	// when the connection may carry messages (warren's node.Reach: it
	// finds the peer by ID, waits for hole punching to replace a relayed
	// connection, and refuses a relay whose limits would cut the stream);
	// its error is returned by that Send or Request. The stream is then
	// opened allowing a limited (relayed) connection. Nil: the host dials
	// the peer's known addresses, and libp2p opens no stream on a limited
	// connection (it waits, within OpenTimeout, for a direct one).
	Reach func(ctx context.Context, p peer.ID) error
	// ReachTimeout bounds Reach (default 30 s, as tunnels' dial timeout:
	// node.Reach waits for a hole punch at most half of it).
	ReachTimeout time.Duration
	// MaxConcurrentHandlers bounds request handlers running at once, over
	// all peers (default 64). When all are busy, reading from requesting
	// peers' streams waits.
	MaxConcurrentHandlers int
	// MaxHandlersPerPeer bounds the request handlers one peer can have
	// running at once (default 8, at most MaxConcurrentHandlers), so one peer
	// never holds all the handler slots. When a peer has that many running,
	// reading from its streams (only its) waits.
	MaxHandlersPerPeer int
	// ReplyTimeout bounds how long a reply waits for room in the send queue
	// of a requester that does not read (default 2 s); then it is dropped and
	// counted in Stats.FailedReplies, and the handler slot is free again.
	ReplyTimeout time.Duration
	// MaxStreamsPerPeer is the resource-manager limit on inbound (and,
	// separately, outbound) msg streams per peer (default 8; the service
	// uses one per peer and direction). See ResourceLimits.
	MaxStreamsPerPeer int
	// SubscribeMaxBytes is the default of SubscribeOptions.MaxBytes
	// (default 16 MiB).
	SubscribeMaxBytes int
	// FrameGrace and FrameMinRate bound how long an inbound frame larger
	// than the reused 64 KiB buffer may take to arrive, counted from when it
	// outgrows that buffer: FrameGrace plus its length at FrameMinRate bytes
	// per second (defaults 10 s and 64 KiB/s: 74 s for a 4 MiB frame). A
	// frame not complete by then has its stream reset (counted in
	// Stats.SlowFrames), so the memory reserved for it cannot be held
	// forever by a peer that withholds its last byte.
	FrameGrace   time.Duration
	FrameMinRate int
}

// orDefault sets *v to def if it is zero, and refuses a negative value.
func orDefault[T int | int64 | time.Duration](name string, v *T, def T) error {
	switch {
	case *v < 0:
		return kindf(ErrInvalid, "msg: Options.%s is %v; want >= 0 (0 means %v)", name, *v, def)
	case *v == 0:
		*v = def
	}
	return nil
}

func (o *Options) normalize() error {
	if o.Network == "" {
		o.Network = DefaultNetwork
	}
	if err := netname.Check(o.Network); err != nil {
		return kindf(ErrInvalid, "msg: Options.Network: %w", err)
	}
	switch {
	case o.MaxMessageSize < 0 || o.MaxMessageSize > MaxMaxMessageSize:
		return kindf(ErrInvalid, "msg: Options.MaxMessageSize is %d; want 0 (default %d) to %d", o.MaxMessageSize, DefaultMaxMessageSize, MaxMaxMessageSize)
	case o.MaxMessageSize == 0:
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	// MaxHandlersPerPeer's default depends on MaxConcurrentHandlers.
	if err := orDefault("MaxConcurrentHandlers", &o.MaxConcurrentHandlers, DefaultMaxConcurrentHandlers); err != nil {
		return err
	}
	perPeer := min(DefaultMaxHandlersPerPeer, o.MaxConcurrentHandlers)
	if err := errors.Join(
		orDefault("SendQueue", &o.SendQueue, DefaultSendQueue),
		orDefault("RequestTimeout", &o.RequestTimeout, DefaultRequestTimeout),
		orDefault("OpenTimeout", &o.OpenTimeout, DefaultOpenTimeout),
		orDefault("ReachTimeout", &o.ReachTimeout, DefaultReachTimeout),
		orDefault("MaxHandlersPerPeer", &o.MaxHandlersPerPeer, perPeer),
		orDefault("ReplyTimeout", &o.ReplyTimeout, DefaultReplyTimeout),
		orDefault("MaxStreamsPerPeer", &o.MaxStreamsPerPeer, DefaultMaxStreamsPerPeer),
		orDefault("SubscribeMaxBytes", &o.SubscribeMaxBytes, DefaultSubscribeMaxBytes),
		orDefault("FrameGrace", &o.FrameGrace, DefaultFrameGrace),
		orDefault("FrameMinRate", &o.FrameMinRate, DefaultFrameMinRate),
	); err != nil {
		return err
	}
	if o.MaxHandlersPerPeer > o.MaxConcurrentHandlers {
		return kindf(ErrInvalid, "msg: Options.MaxHandlersPerPeer is %d; want at most MaxConcurrentHandlers (%d)", o.MaxHandlersPerPeer, o.MaxConcurrentHandlers)
	}
	return nil
}

// frameDeadline is the time a frame of size bytes may take to arrive once
// it outgrows the reused buffer (see Options.FrameGrace).
func (o *Options) frameDeadline(size int) time.Duration {
	return o.FrameGrace + time.Duration(int64(size)*int64(time.Second)/int64(o.FrameMinRate))
}

// Limits are the resource-manager limits of the msg service (ServiceName).
// Zero means libp2p's default.
type Limits struct {
	StreamsInbound, StreamsOutbound         int   // all peers together
	Memory                                  int64 // all peers together
	PeerStreamsInbound, PeerStreamsOutbound int   // per peer
	PeerMemory                              int64 // per peer
}

// Memory the resource manager lets the msg service hold for frames being
// read, in frames of MaxMessageSize (plus envelope): per peer (one frame on
// each of a few streams), and for all peers together. The payloads of
// requests whose handlers run are accounted apart, by the service itself,
// in budgets of the same sizes (see serveRequest).
const (
	peerMemoryFrames    = 4
	serviceMemoryFrames = 32
)

// ResourceLimits returns the limits the resource manager should apply to the
// service: MaxStreamsPerPeer inbound and outbound msg streams per peer, and
// memory for frames being read of 4 maximal frames per peer and 32 over all
// peers. Streams over all peers keep libp2p's default. A message of
// MaxMessageSize needs one frame, so it always fits, and an honest peer (one
// stream per direction, a frame at a time) never needs more than one.
func ResourceLimits(opts Options) (Limits, error) {
	if err := opts.normalize(); err != nil {
		return Limits{}, err
	}
	frame := int64(opts.MaxMessageSize + envelopeOverhead)
	return Limits{
		Memory:              serviceMemoryFrames * frame,
		PeerStreamsInbound:  opts.MaxStreamsPerPeer,
		PeerStreamsOutbound: opts.MaxStreamsPerPeer,
		PeerMemory:          peerMemoryFrames * frame,
	}, nil
}

// ProtocolID returns the direct-message protocol of a network name.
func ProtocolID(network string) protocol.ID {
	return protocol.ID("/warren/" + network + "/msg/1.0.0")
}

// Handler answers a request. Its ctx ends when the requester's deadline
// passes or the Service closes. A returned error is sent to the requester,
// whose Request returns it as a *RemoteError.
type Handler func(ctx context.Context, m *Message) ([]byte, error)

// typeState holds everything about one known message type. Known types are
// those with a local subscriber or handler or that were sent locally; only
// they get their own statistics and metric labels.
type typeState struct {
	name    string
	subs    atomic.Pointer[[]*Subscription] // copy-on-write
	handler atomic.Pointer[Handler]

	msgsIn, bytesIn, msgsOut, bytesOut atomic.Uint64
	dropped, duplicates, unhandled     atomic.Uint64
	sendFailed                         atomic.Uint64
}

// Service sends and receives typed direct messages over one host.
type Service struct {
	h       host.Host
	opts    Options
	proto   protocol.ID
	log     *slog.Logger
	maxBody int // largest frame body accepted

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	idPrefix  [8]byte
	idCounter atomic.Uint64
	corr      atomic.Uint64

	types atomic.Pointer[map[string]*typeState] // copy-on-write, writes under mu
	other *typeState

	mu        sync.Mutex
	closed    bool
	subs      map[*Subscription]struct{}
	nextSubID uint64
	inbound   map[network.Stream]struct{}
	inPeers   map[peer.ID]*inPeer // peers with inbound streams or running handlers
	failures  map[peer.ID]*peerFailure
	nFailures atomic.Int32 // len(failures), read without mu on the Send path

	pmu   sync.RWMutex
	peers map[peer.ID]*outPeer
	opens singleflight.Group

	reqMu   sync.Mutex
	pending map[pendingKey]chan reply

	handlers  *semaphore.Weighted
	frames    sync.Pool // *frame
	notifiee  *network.NotifyBundle
	metrics   *metrics
	rlog      *ratelog.Logger // every warning a remote peer can cause
	closeOnce sync.Once

	// handlerMem bounds the payload bytes held by running handlers over
	// all peers (serviceMemoryFrames maximal frames); see inPeer.mem.
	handlerMem *semaphore.Weighted

	badFrames, lateReplies, droppedReplies atomic.Uint64
	refusedStreams, refusedMemory          atomic.Uint64
	slowFrames                             atomic.Uint64
	inboundBytes                           atomic.Int64 // reserved for frames being read
	handlerBytes                           atomic.Int64 // payloads held by running handlers
}

// inPeer is the inbound side of one peer: its handler slots and the budget
// of payload bytes its running handlers hold. It lives while the peer has
// an inbound stream or a running handler (refs, under mu), so a peer that
// resets its streams and opens new ones finds its handlers' payloads still
// counted: the resource manager forgets a stream's reservations when the
// stream ends, which is why the handlers' payloads are not left there.
type inPeer struct {
	refs     int
	handlers *semaphore.Weighted // MaxHandlersPerPeer
	mem      *semaphore.Weighted // peerMemoryFrames maximal frames of payload
}

// inPeerLocked returns p's inbound state, taking a reference. mu held.
func (s *Service) inPeerLocked(p peer.ID) *inPeer {
	ip := s.inPeers[p]
	if ip == nil {
		ip = &inPeer{
			handlers: semaphore.NewWeighted(int64(s.opts.MaxHandlersPerPeer)),
			mem:      semaphore.NewWeighted(peerMemoryFrames * int64(s.maxBody)),
		}
		s.inPeers[p] = ip
	}
	ip.refs++
	return ip
}

// putInPeerLocked drops a reference to p's inbound state. mu held.
func (s *Service) putInPeerLocked(p peer.ID, ip *inPeer) {
	ip.refs--
	if ip.refs == 0 && s.inPeers[p] == ip {
		delete(s.inPeers, p)
	}
}

// New starts a message service on h. It registers the stream handler for
// ProtocolID(opts.Network) and, if opts.Registerer is set, its metrics.
func New(ctx context.Context, h host.Host, opts Options) (*Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("msg: New: %w", err)
	}
	if h == nil {
		return nil, kindf(ErrInvalid, "msg: New: host is nil")
	}
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	s := &Service{
		h:        h,
		opts:     opts,
		proto:    ProtocolID(opts.Network),
		log:      opts.Logger.With("component", "msg", "network", opts.Network),
		maxBody:  opts.MaxMessageSize + envelopeOverhead,
		other:    &typeState{name: OtherType},
		subs:     make(map[*Subscription]struct{}),
		inbound:  make(map[network.Stream]struct{}),
		inPeers:  make(map[peer.ID]*inPeer),
		failures: make(map[peer.ID]*peerFailure),
		peers:    make(map[peer.ID]*outPeer),
		pending:  make(map[pendingKey]chan reply),
		handlers: semaphore.NewWeighted(int64(opts.MaxConcurrentHandlers)),
	}
	s.handlerMem = semaphore.NewWeighted(serviceMemoryFrames * int64(s.maxBody))
	s.rlog = ratelog.New(s.log, 0)
	if _, err := rand.Read(s.idPrefix[:]); err != nil {
		return nil, fmt.Errorf("msg: New: read random id prefix: %w", err)
	}
	empty := map[string]*typeState{}
	s.types.Store(&empty)
	s.frames.New = func() any { return &frame{} }
	if opts.Registerer != nil {
		m, err := newMetrics(s, opts.Registerer)
		if err != nil {
			_ = s.rlog.Close()
			return nil, err
		}
		s.metrics = m
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.notifiee = &network.NotifyBundle{DisconnectedF: s.disconnected}
	h.Network().Notify(s.notifiee)
	h.SetStreamHandler(s.proto, s.handleStream)
	return s, nil
}

// Protocol returns the protocol ID the service speaks.
func (s *Service) Protocol() protocol.ID { return s.proto }

// Close stops the service: it removes the stream handler, resets all its
// streams, closes all subscriptions (queued messages counted as dropped),
// counts messages still in send queues as failed, fails pending requests and
// waits for every goroutine it started, including running handlers (which see
// their ctx cancelled). Close is idempotent.
func (s *Service) Close() error {
	s.closeOnce.Do(s.close)
	return nil
}

func (s *Service) close() {
	s.mu.Lock()
	s.closed = true
	subs := make([]*Subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	inbound := make([]network.Stream, 0, len(s.inbound))
	for str := range s.inbound {
		inbound = append(inbound, str)
	}
	s.mu.Unlock()

	s.cancel()
	s.h.RemoveStreamHandler(s.proto)
	s.h.Network().StopNotify(s.notifiee)

	for _, str := range inbound {
		_ = str.Reset()
	}
	for _, sub := range subs {
		sub.shut()
	}
	s.pmu.Lock()
	peers := make([]*outPeer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.pmu.Unlock()
	for _, p := range peers {
		p.fail(ErrClosed, 0)
	}
	s.failAllPending(ErrClosed)
	s.wg.Wait()
	if s.metrics != nil {
		s.metrics.unregister()
	}
	_ = s.rlog.Close()
}

// track registers a goroutine that must end before Close returns.
// It returns false if the service is closed.
func (s *Service) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// knownType returns the state of a known type, or nil.
func (s *Service) knownType(typ string) *typeState {
	return (*s.types.Load())[typ]
}

// knownTypeBytes is knownType for the receive path (no allocation).
func (s *Service) knownTypeBytes(typ []byte) *typeState {
	return (*s.types.Load())[string(typ)]
}

// addType returns the state of typ, making it a known type if needed.
// typ must be valid.
func (s *Service) addType(typ string) *typeState {
	if ts := s.knownType(typ); ts != nil {
		return ts
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.types.Load()
	if ts := old[typ]; ts != nil {
		return ts
	}
	next := make(map[string]*typeState, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	ts := &typeState{name: typ}
	next[typ] = ts
	s.types.Store(&next)
	return ts
}

// Subscribe returns a subscription that receives every direct message of typ
// (not requests: those go to the Handler). Several subscriptions of one type
// each receive every message.
func (s *Service) Subscribe(typ string, opts SubscribeOptions) (*Subscription, error) {
	if err := ValidateType(typ); err != nil {
		return nil, fmt.Errorf("msg: subscribe: %w", err)
	}
	if err := opts.normalize(s.opts.SubscribeMaxBytes); err != nil {
		return nil, fmt.Errorf("msg: subscribe %q: %w", typ, err)
	}
	ts := s.addType(typ)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("msg: subscribe %q: %w", typ, ErrClosed)
	}
	s.nextSubID++
	sub := newSubscription(s, ts, s.nextSubID, opts)
	s.subs[sub] = struct{}{}
	var list []*Subscription
	if cur := ts.subs.Load(); cur != nil {
		list = append(list, *cur...)
	}
	list = append(list, sub)
	ts.subs.Store(&list)
	return sub, nil
}

func (s *Service) removeSubscription(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; !ok {
		return
	}
	delete(s.subs, sub)
	cur := sub.ts.subs.Load()
	if cur == nil {
		return
	}
	list := make([]*Subscription, 0, len(*cur))
	for _, x := range *cur {
		if x != sub {
			list = append(list, x)
		}
	}
	sub.ts.subs.Store(&list)
}

// Registration is a request handler registered by Handle.
type Registration struct {
	ts *typeState
	h  *Handler
}

// Close unregisters the handler (if it is still the type's). Requests
// already running finish. Close is idempotent and returns nil.
func (r *Registration) Close() error {
	r.ts.handler.CompareAndSwap(r.h, nil)
	return nil
}

// Handle registers the request handler of typ until the Registration is
// closed. Only one handler per type: registering a second one fails with
// ErrExists.
func (s *Service) Handle(typ string, h Handler) (*Registration, error) {
	if err := ValidateType(typ); err != nil {
		return nil, fmt.Errorf("msg: handle: %w", err)
	}
	if h == nil {
		return nil, kindf(ErrInvalid, "msg: handle %q: handler is nil", typ)
	}
	ts := s.addType(typ)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("msg: handle %q: %w", typ, ErrClosed)
	}
	hp := &h
	if !ts.handler.CompareAndSwap(nil, hp) {
		return nil, kindf(ErrExists, "msg: handle %q: a handler is already registered for this type", typ)
	}
	return &Registration{ts: ts, h: hp}, nil
}

// newID returns a fresh message ID.
func (s *Service) newID() ID {
	var id ID
	copy(id[:8], s.idPrefix[:])
	binary.BigEndian.PutUint64(id[8:], s.idCounter.Add(1))
	return id
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
