package warren

import (
	"context"
	"fmt"

	"github.com/warren-p2p/warren/msg"
)

// startServices starts the capabilities built on the node; each is closed,
// in reverse order, by Node.Close.
func (n *Node) startServices(ctx context.Context, opts Options) error {
	cfg := opts.Config
	ms, err := msg.New(n.Host(), msg.Options{
		Network:        cfg.Network,
		MaxMessageSize: cfg.Messages.MaxMessageSize,
		SendQueue:      cfg.Messages.SendQueue,
		RequestTimeout: cfg.Messages.RequestTimeout.Std(),
		Logger:         n.log.With("component", "msg"),
		Registerer:     n.Metrics,
	})
	if err != nil {
		return fmt.Errorf("start messages: %w", err)
	}
	n.Msg = ms
	n.closers = append(n.closers, ms.Close)
	return nil
}
