package node

// Rendezvous for topics: provider records on warren's DHT and, with
// public_network, on the Amino DHT, so that members of a topic find each
// other across NATs on the public network too.

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
)

// Discovery returns the rendezvous of the node's DHTs, or nil when it has
// none. A namespace (pubsub's "floodsub:/warren/<network>/topic/<name>")
// becomes a provider record under the SHA-256 of its name: on the Amino
// DHT the key is derived from the network and topic names, and the record
// names this node's peer ID and addresses to anyone who asks.
func (n *Node) Discovery() discovery.Discovery {
	var ds multiDiscovery
	if n.dht != nil {
		ds = append(ds, drouting.NewRoutingDiscovery(n.dht))
	}
	if n.amino != nil {
		ds = append(ds, drouting.NewRoutingDiscovery(n.amino))
	}
	switch len(ds) {
	case 0:
		return nil
	case 1:
		return ds[0]
	}
	return ds
}

// multiDiscovery advertises on every discovery at once and merges what
// they find.
type multiDiscovery []discovery.Discovery

// Advertise works if one discovery takes the advertisement; its TTL is the
// shortest of those that did. It fails only when all fail.
func (m multiDiscovery) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	type result struct {
		ttl time.Duration
		err error
	}
	res := make(chan result, len(m))
	for _, d := range m {
		go func() {
			ttl, err := d.Advertise(ctx, ns, opts...)
			res <- result{ttl, err}
		}()
	}
	var ttl time.Duration
	var errs []error
	for range m {
		r := <-res
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if ttl == 0 || r.ttl < ttl {
			ttl = r.ttl
		}
	}
	if len(errs) == len(m) {
		return 0, joinLine(errs)
	}
	return ttl, nil
}

// FindPeers merges the peers every discovery finds, each peer once, up to
// the limit option if one is given.
func (m multiDiscovery) FindPeers(ctx context.Context, ns string, opts ...discovery.Option) (<-chan peer.AddrInfo, error) {
	var o discovery.Options
	if err := o.Apply(opts...); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var chans []<-chan peer.AddrInfo
	var errs []error
	for _, d := range m {
		ch, err := d.FindPeers(ctx, ns, opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		chans = append(chans, ch)
	}
	if len(chans) == 0 {
		cancel()
		return nil, joinLine(errs)
	}
	out := make(chan peer.AddrInfo)
	merged := make(chan peer.AddrInfo)
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ai := range ch {
				select {
				case merged <- ai:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(merged) }()
	go func() {
		defer close(out)
		defer cancel()
		seen := map[peer.ID]bool{}
		for ai := range merged {
			if seen[ai.ID] {
				continue
			}
			seen[ai.ID] = true
			select {
			case out <- ai:
			case <-ctx.Done():
				for range merged { // let the readers end
				}
				return
			}
			if o.Limit > 0 && len(seen) >= o.Limit {
				cancel()
				for range merged {
				}
				return
			}
		}
	}()
	return out, nil
}

// joinLine joins errors on one line; errors.Is sees each.
func joinLine(errs []error) error { return lineErrors(errs) }

type lineErrors []error

func (e lineErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = oneLine(err.Error())
	}
	return strings.Join(parts, "; ")
}

func (e lineErrors) Unwrap() []error { return e }
