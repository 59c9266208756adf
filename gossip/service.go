package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/warren-p2p/warren/internal/ratelog"

	"github.com/warren-p2p/warren/internal/errkind"
)

// Service is warren's broadcast on one host. Safe for concurrent use.
type Service struct {
	host   host.Host
	opts   Options
	log    *slog.Logger
	ps     *pubsub.PubSub
	protos []protocol.ID
	prefix string // "/warren/<network>/topic/"
	m      *metrics
	filter *subFilter
	notify *network.NotifyBundle // drops state of departed peers

	// rlog rate-limits the warnings remote peers can cause; psLog does
	// the same for pubsub's own log lines.
	rlog, psLog *ratelog.Logger
	rdv         *rendezvous // nil without Options.Discovery

	// ctx bounds pubsub and every pump goroutine; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // pump goroutines

	// mu guards topics, subs, validators and closed. It may be held
	// across calls into pubsub: pubsub never calls code that takes it.
	mu         sync.Mutex
	topics     map[string]*Topic
	subs       map[*Subscription]struct{}
	validators map[string]bool // topic names with a registered Validator
	closed     bool

	// statsMu guards stats. The tracer takes it from pubsub's event loop,
	// so it is never held across a call into pubsub.
	statsMu      sync.RWMutex
	stats        map[string]*topicStats // by full topic string
	other        *topicStats
	controlDrops atomic.Uint64

	// Streams the resource manager refused the gossip service, each way.
	refusedIn, refusedOut atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// New starts gossip on h. ctx bounds the start, as for every warren
// constructor; the Service then runs until Close. h must stay open until
// Close returns.
func New(ctx context.Context, h host.Host, opts Options) (*Service, error) {
	if h == nil {
		return nil, kindf(ErrInvalid, "gossip: new: host is nil; expected a running libp2p host")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, kindf(ErrInvalid, "gossip: new: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gossip: new: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gossip: new: %w", err)
	}
	psCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{
		host:       h,
		opts:       opts,
		log:        opts.Logger,
		prefix:     "/warren/" + opts.Network + "/topic/",
		m:          m,
		rlog:       ratelog.New(opts.Logger, 0),
		psLog:      ratelog.New(opts.Logger.With("system", "pubsub"), 0),
		ctx:        psCtx,
		cancel:     cancel,
		topics:     make(map[string]*Topic),
		subs:       make(map[*Subscription]struct{}),
		stats:      make(map[string]*topicStats),
		validators: make(map[string]bool),
	}
	s.other = newTopicStats(otherTopic, m, s.log, s.rlog)
	s.filter = newSubFilter(s.prefix, opts.MaxTopicsPerRPC, opts.MaxTopicsPerPeer, h.Network(), m, s.rlog)
	// Before pubsub starts, so no peer can be tracked without being forgotten.
	s.notify = &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		s.peerDisconnected(n, c.RemotePeer())
	}}
	h.Network().Notify(s.notify)
	s.protos, err = s.startPubSub(psCtx)
	if err != nil {
		cancel()
		h.Network().StopNotify(s.notify)
		m.unregister()
		_ = s.rlog.Close()
		_ = s.psLog.Close()
		return nil, fmt.Errorf("gossip: new: start gossipsub on %s: %w", h.ID(), err)
	}
	s.log.Info("gossip: started", "network", opts.Network, "max_message_size", opts.MaxMessageSize,
		"discovery", opts.Discovery != nil, "max_topics_per_rpc", opts.MaxTopicsPerRPC,
		"max_topics_per_peer", opts.MaxTopicsPerPeer)
	return s, nil
}

// startPubSub builds the GossipSub router under warren's protocol IDs.
func (s *Service) startPubSub(ctx context.Context) ([]protocol.ID, error) {
	protos, features := protocols(s.opts.Network)
	psOpts := []pubsub.Option{
		pubsub.WithGossipSubProtocols(protos, features),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		// pubsub's limit is on the whole RPC: payload plus envelope.
		pubsub.WithMaxMessageSize(s.opts.MaxMessageSize + envelopeOverhead),
		pubsub.WithPeerOutboundQueueSize(s.opts.OutboundQueueSize),
		pubsub.WithValidateQueueSize(s.opts.ValidateQueueSize),
		pubsub.WithFloodPublish(!s.opts.DisableFloodPublish),
		pubsub.WithRawTracer(tracer{s: s}),
		pubsub.WithLogger(slog.New(newRateHandler(s.log.With("system", "pubsub"), s.psLog))),
		// Only this network's topics, with valid names, a bounded number
		// per RPC and per peer: without it every topic string a peer
		// announces becomes a map in pubsub, for as long as it stays.
		pubsub.WithSubscriptionFilter(s.filter),
	}
	if s.opts.HeartbeatInterval != DefaultHeartbeatInterval {
		psOpts = append(psOpts, pubsub.WithGossipSubParams(gossipParams(s.opts.HeartbeatInterval)))
	}
	if s.opts.Discovery != nil {
		s.rdv = &rendezvous{d: s.opts.Discovery, log: s.log, failures: s.m.advertiseFailures}
		psOpts = append(psOpts, pubsub.WithDiscovery(s.rdv))
	}
	// pubsub gets a host whose streams join the gossip service.
	ps, err := pubsub.NewGossipSub(ctx, scopedHost{Host: s.host, s: s}, psOpts...)
	if err != nil {
		return nil, err
	}
	s.ps = ps
	return protos, nil
}

// gossipParams returns pubsub's default GossipSub parameters with the
// given heartbeat, scaling the heartbeat-counted message-cache windows so
// they keep their default length in time.
func gossipParams(heartbeat time.Duration) pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	scale := func(ticks int) int {
		return max(1, int(time.Duration(ticks)*p.HeartbeatInterval/heartbeat))
	}
	p.HistoryGossip = scale(p.HistoryGossip)
	p.HistoryLength = max(p.HistoryGossip, scale(p.HistoryLength))
	p.HeartbeatInterval = heartbeat
	return p
}

// protocols returns warren's GossipSub protocol IDs for a network, newest
// first, and a feature test mapping each to the upstream version it speaks.
func protocols(network string) ([]protocol.ID, pubsub.GossipSubFeatureTest) {
	prefix := "/warren/" + network
	ids := []protocol.ID{
		protocol.ID(prefix + string(pubsub.GossipSubID_v13)),
		protocol.ID(prefix + string(pubsub.GossipSubID_v12)),
		protocol.ID(prefix + string(pubsub.GossipSubID_v11)),
	}
	features := func(f pubsub.GossipSubFeature, p protocol.ID) bool {
		upstream, ok := strings.CutPrefix(string(p), prefix)
		if !ok {
			return false
		}
		return pubsub.GossipSubDefaultFeatures(f, protocol.ID(upstream))
	}
	return ids, features
}

// Close leaves every topic, cancels every Subscription, stops pubsub and
// waits for this package's goroutines. Further calls return the same error.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		subs := make([]*Subscription, 0, len(s.subs))
		for sub := range s.subs {
			subs = append(subs, sub)
		}
		topics := make([]*Topic, 0, len(s.topics))
		for _, t := range s.topics {
			topics = append(topics, t)
		}
		s.mu.Unlock()

		// Leave politely while pubsub still runs, so peers see the
		// unsubscribe instead of waiting for the connection to go.
		for _, sub := range subs {
			sub.cancel()
		}
		var errs []error
		for _, t := range topics {
			if err := t.leave(); err != nil {
				errs = append(errs, err)
			}
		}
		s.cancel()
		s.wg.Wait()
		for _, p := range s.protos {
			s.host.RemoveStreamHandler(p)
		}
		s.host.Network().StopNotify(s.notify)
		_ = s.rlog.Close()
		_ = s.psLog.Close()
		s.m.unregister()
		s.closeErr = errors.Join(errs...)
		s.log.Info("gossip: closed")
	})
	return s.closeErr
}

// fullName is the pubsub topic string for a topic name.
func (s *Service) fullName(name string) string { return s.prefix + name }

// MaxTopicLen is the longest topic name.
const MaxTopicLen = 128

// ValidateTopic checks a topic name: 1 to MaxTopicLen letters, digits, '.',
// '_' or '-', starting with a letter or digit. The error quotes the name
// and says what is wrong with it and what is expected.
func ValidateTopic(name string) error {
	if err := checkName("topic name", name, MaxTopicLen); err != nil {
		return &errkind.Error{Kind: ErrInvalidTopic, Err: err}
	}
	return nil
}

// Join joins the topic name: this node becomes a member of its mesh,
// relays its messages, and (with Options.Discovery) advertises it and looks
// for its other members. Join is idempotent: joining again returns the same
// Topic. Names are 1-128 letters, digits, '.', '_' or '-'.
func (s *Service) Join(name string) (*Topic, error) {
	if err := ValidateTopic(name); err != nil {
		return nil, fmt.Errorf("gossip: join: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("gossip: join %q: %w", name, ErrClosed)
	}
	if t, ok := s.topics[name]; ok {
		return t, nil
	}
	if len(s.topics) >= s.opts.MaxTopicsPerRPC {
		return nil, fmt.Errorf("gossip: join %q: %w: %d already, the limit (MaxTopicsPerRPC) "+
			"peers apply to one RPC; leave one first", name, ErrTooManyTopics, len(s.topics))
	}
	full := s.fullName(name)
	st := s.ensureStats(name) // before pubsub can report on the topic
	pt, err := s.ps.Join(full)
	if err != nil {
		return nil, fmt.Errorf("gossip: join %q: %w", name, err)
	}
	relayCancel, err := pt.Relay()
	if err != nil {
		_ = pt.Close()
		return nil, fmt.Errorf("gossip: join %q: relay: %w", name, err)
	}
	t := &Topic{s: s, name: name, full: full, pt: pt, relayCancel: relayCancel, stats: st}
	s.topics[name] = t
	s.log.Debug("gossip: joined", "topic", name)
	return t, nil
}

// Leave stops relaying the topic name and forgets it. It fails if local
// Subscriptions to it are still open. Leaving a topic not joined is a no-op.
func (s *Service) Leave(name string) error {
	s.mu.Lock()
	t := s.topics[name]
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	return t.Close()
}

// Publish sends data to every member of the topic name, joining it first
// if needed. See Topic.Publish.
func (s *Service) Publish(ctx context.Context, name string, data []byte) error {
	if err := s.checkSize(name, data); err != nil {
		return err
	}
	t, err := s.Join(name) // its error names the topic
	if err != nil {
		return err
	}
	return t.Publish(ctx, data)
}

func (s *Service) checkSize(name string, data []byte) error {
	if len(data) > s.opts.MaxMessageSize {
		return kindf(ErrTooLarge, "gossip: publish to %q: the message is %d bytes, over the limit of %d bytes (MaxMessageSize)",
			name, len(data), s.opts.MaxMessageSize)
	}
	return nil
}

// Subscribe joins the topic name if needed and returns a new Subscription
// to its messages.
func (s *Service) Subscribe(name string, opts SubscribeOptions) (*Subscription, error) {
	t, err := s.Join(name) // its error names the topic
	if err != nil {
		return nil, err
	}
	return t.Subscribe(opts)
}

// RegisterValidator sets the validator of the topic name (joined or not).
// Every message on the topic, received or published here, passes through
// it before delivery or relay. One validator per topic; a panic in v is
// recovered and counts as Reject.
func (s *Service) RegisterValidator(name string, v Validator) error {
	if err := ValidateTopic(name); err != nil {
		return fmt.Errorf("gossip: register validator: %w", err)
	}
	if v == nil {
		return kindf(ErrInvalid, "gossip: register validator for %q: validator is nil", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("gossip: register validator for %q: %w", name, ErrClosed)
	}
	if s.validators[name] {
		return kindf(ErrInUse, "gossip: register validator for %q: topic already has a validator; unregister it first", name)
	}
	if err := s.ps.RegisterTopicValidator(s.fullName(name), s.wrapValidator(name, v)); err != nil {
		return fmt.Errorf("gossip: register validator for %q: %w", name, err)
	}
	s.validators[name] = true
	return nil
}

// UnregisterValidator removes the validator of the topic name.
func (s *Service) UnregisterValidator(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.validators[name] {
		return fmt.Errorf("gossip: unregister validator for %q: topic has no validator", name)
	}
	if s.closed {
		return fmt.Errorf("gossip: unregister validator for %q: %w", name, ErrClosed)
	}
	if err := s.ps.UnregisterTopicValidator(s.fullName(name)); err != nil {
		return fmt.Errorf("gossip: unregister validator for %q: %w", name, err)
	}
	delete(s.validators, name)
	return nil
}

func (s *Service) wrapValidator(name string, v Validator) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, pm *pubsub.Message) (res pubsub.ValidationResult) {
		defer func() {
			if r := recover(); r != nil {
				// A peer's message triggers it, as often as the peer likes.
				s.rlog.Log(slog.LevelError, "gossip: validator panicked; rejecting message", "topic", name, "panic", r)
				res = pubsub.ValidationReject
			}
		}()
		switch r := v(ctx, from, newMessage(name, pm, time.Now())); r {
		case Accept:
			return pubsub.ValidationAccept
		case Ignore:
			return pubsub.ValidationIgnore
		case Reject:
			return pubsub.ValidationReject
		default:
			s.rlog.Log(slog.LevelError, "gossip: validator returned an unknown result; rejecting message",
				"topic", name, "result", r)
			return pubsub.ValidationReject
		}
	}
}

// Topics describes the joined topics, sorted by name.
func (s *Service) Topics() []TopicInfo {
	s.mu.Lock()
	topics := make([]*Topic, 0, len(s.topics))
	for _, t := range s.topics {
		topics = append(topics, t)
	}
	s.mu.Unlock()
	sort.Slice(topics, func(i, j int) bool { return topics[i].name < topics[j].name })
	out := make([]TopicInfo, 0, len(topics))
	for _, t := range topics {
		out = append(out, t.Info())
	}
	return out
}

// ControlDropped counts control-only RPCs (IHAVE/IWANT/GRAFT/PRUNE) dropped
// on full peer queues. pubsub re-queues their control parts; they carry no
// messages, so they are not counted against any topic.
func (s *Service) ControlDropped() uint64 { return s.controlDrops.Load() }

func (s *Service) controlDropped() {
	s.m.controlDropped.Inc()
	s.controlDrops.Add(1)
}

// SubscriptionsRefused counts, per reason (Refuse* constants), the
// subscriptions peers announced that this node did not track. Reasons with
// a zero count are left out.
func (s *Service) SubscriptionsRefused() map[string]uint64 {
	out := make(map[string]uint64)
	for r := range numRefuseReasons {
		if n := s.filter.refused[r].Load(); n > 0 {
			out[r.String()] = n
		}
	}
	return out
}

// AdvertiseFailures counts failed topic advertisements (0 without
// Options.Discovery).
func (s *Service) AdvertiseFailures() uint64 {
	if s.rdv == nil {
		return 0
	}
	return s.rdv.failed.Load()
}

// peerDisconnected drops what this package holds about p once its last
// connection is gone: its subscriptions in the filter and its place in
// every topic's mesh count. pubsub drops its own state for p itself.
func (s *Service) peerDisconnected(n network.Network, p peer.ID) {
	if connected(n, p) {
		return // another connection remains
	}
	s.filter.forget(p)
	s.statsMu.RLock()
	defer s.statsMu.RUnlock()
	for _, st := range s.stats {
		st.prune(p)
	}
	s.other.prune(p)
}

// statsFor returns the counters of a full topic string, for the tracer.
// Joined topics have their own (made by Join before pubsub hears of the
// topic); anything else is counted under "_other" so labels stay bounded.
func (s *Service) statsFor(full string) *topicStats {
	s.statsMu.RLock()
	defer s.statsMu.RUnlock()
	if st, ok := s.stats[full]; ok {
		return st
	}
	return s.other
}

// ensureStats returns the counters of a topic, creating them. They outlive
// Leave, so a re-joined topic keeps counting from where it was.
func (s *Service) ensureStats(name string) *topicStats {
	full := s.fullName(name)
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st, ok := s.stats[full]
	if !ok {
		st = newTopicStats(name, s.m, s.log, s.rlog)
		s.stats[full] = st
	}
	return st
}
