package warren

import "context"

// startServices starts the capabilities built on the node.
func (n *Node) startServices(ctx context.Context, opts Options) error {
	return nil
}
