package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ParsePeer reads a peer given as text: a multiaddr ending in
// /p2p/<peer-id> (an AddrInfo with its address), or a bare peer ID (an
// AddrInfo without addresses). The error names the input and the forms
// expected. It is warren's one parser of peers written as text: the API
// (node.ParseTarget), the CLI's inputs and the tunnel state file use it.
func ParsePeer(s string) (peer.AddrInfo, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return peer.AddrInfo{}, errors.New("empty peer: expected a peer ID or a multiaddr ending in /p2p/<peer-id>")
	}
	if strings.HasPrefix(s, "/") {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("bad multiaddr %q: %v", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("multiaddr %q: expected it to end in /p2p/<peer-id>", s)
		}
		return *ai, nil
	}
	id, err := peer.Decode(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("bad peer %q: expected a peer ID (12D3KooW...) or a multiaddr ending in /p2p/<peer-id>", s)
	}
	return peer.AddrInfo{ID: id}, nil
}
