package gossip

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// advertiseRetry is how soon a failed topic advertisement is retried.
// pubsub retries after 2 minutes unless the discovery says otherwise; a
// node that joins a topic before its DHT has any peers (the usual case at
// start-up) would stay unfindable for that long.
const advertiseRetry = 10 * time.Second

// rendezvous wraps the node's discovery for pubsub: it reports
// advertisement failures and asks for a quick retry.
//
// It returns failures to pubsub as a retry delay with a nil error: pubsub
// only logs a returned error (at Warn, on every retry) and otherwise uses
// the delay, so reporting here is what keeps the log quiet.
//
// A node with no DHT peers fails every advertisement, every advertiseRetry,
// for as long as it stays alone. The first failure of such a run is logged
// at Warn, the rest at Debug; every failure is counted
// (warren_gossip_advertise_failures_total). A success ends the run (logged
// at Info), so the next outage warns once again.
type rendezvous struct {
	d        discovery.Discovery
	log      *slog.Logger
	failures prometheus.Counter
	failing  atomic.Bool   // in a run of failures
	failed   atomic.Uint64 // failures, all time
}

func (r *rendezvous) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	ttl, err := r.d.Advertise(ctx, ns, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return advertiseRetry, nil // shutting down or leaving the topic: pubsub stops the loop
		}
		r.failures.Inc()
		r.failed.Add(1)
		if r.failing.CompareAndSwap(false, true) {
			r.log.Warn("gossip: advertising topic failed; retrying every "+advertiseRetry.String()+
				" (further failures are logged at debug level and counted in warren_gossip_advertise_failures_total)",
				"namespace", ns, "err", err)
		} else {
			r.log.Debug("gossip: advertising topic failed; will retry", "namespace", ns, "retry_in", advertiseRetry, "err", err)
		}
		return advertiseRetry, nil
	}
	if r.failing.CompareAndSwap(true, false) {
		r.log.Info("gossip: advertising topics works again", "namespace", ns, "ttl", ttl)
	} else {
		r.log.Debug("gossip: advertised topic", "namespace", ns, "ttl", ttl)
	}
	return ttl, nil
}

func (r *rendezvous) FindPeers(ctx context.Context, ns string, opts ...discovery.Option) (<-chan peer.AddrInfo, error) {
	ch, err := r.d.FindPeers(ctx, ns, opts...)
	if err != nil && ctx.Err() == nil {
		r.log.Debug("gossip: finding topic peers failed", "namespace", ns, "err", err)
	}
	return ch, err
}
