package config_test

import (
	"testing"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/tunnel"
)

// Package tunnel imports config (for WriteFileAtomic and ParsePeer), so
// config cannot refer to tunnel's defaults and limits: this test keeps the
// two the same.
func TestTunnelDefaultsAreTunnels(t *testing.T) {
	c := config.Default().Tunnels
	if c.DialTimeout.Std() != tunnel.DefaultDialTimeout || c.UDPIdleTimeout.Std() != tunnel.DefaultUDPIdleTimeout ||
		c.MaxConnsPerTunnel != tunnel.DefaultMaxConns || config.MaxTunnelConns != tunnel.MaxMaxConns {
		t.Fatalf("config tunnels %+v, max %d; tunnel: dial %v, udp idle %v, max conns %d, max %d", c, config.MaxTunnelConns,
			tunnel.DefaultDialTimeout, tunnel.DefaultUDPIdleTimeout, tunnel.DefaultMaxConns, tunnel.MaxMaxConns)
	}
}
