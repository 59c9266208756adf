package gossip

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
)

// advertiseRetry is how soon a failed topic advertisement is retried.
// pubsub retries after 2 minutes unless the discovery says otherwise; a
// node that joins a topic before its DHT has any peers (the usual case at
// start-up) would stay unfindable for that long.
const advertiseRetry = 10 * time.Second

// rendezvous wraps the node's discovery for pubsub: it logs advertisement
// failures to the Service's logger and asks for a quick retry.
type rendezvous struct {
	d   discovery.Discovery
	log *slog.Logger
}

func (r rendezvous) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	ttl, err := r.d.Advertise(ctx, ns, opts...)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("gossip: advertising topic failed; will retry", "namespace", ns, "retry_in", advertiseRetry, "err", err)
		}
		return advertiseRetry, err
	}
	r.log.Debug("gossip: advertised topic", "namespace", ns, "ttl", ttl)
	return ttl, nil
}

func (r rendezvous) FindPeers(ctx context.Context, ns string, opts ...discovery.Option) (<-chan peer.AddrInfo, error) {
	ch, err := r.d.FindPeers(ctx, ns, opts...)
	if err != nil && ctx.Err() == nil {
		r.log.Debug("gossip: finding topic peers failed", "namespace", ns, "err", err)
	}
	return ch, err
}
