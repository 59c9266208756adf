package config

import (
	"strings"
	"testing"
)

func TestGossipTopicLimitsAreChecked(t *testing.T) {
	c := Default()
	if c.Gossip.MaxTopicsPerRPC != 100 || c.Gossip.MaxTopicsPerPeer != 256 {
		t.Fatalf("defaults %d, %d; expected 100 and 256", c.Gossip.MaxTopicsPerRPC, c.Gossip.MaxTopicsPerPeer)
	}
	cases := map[string]string{
		"[gossip]\nmax_topics_per_rpc = 0":      "gossip.max_topics_per_rpc: expected 1..10000, got 0",
		"[gossip]\nmax_topics_per_rpc = 10001":  "gossip.max_topics_per_rpc",
		"[gossip]\nmax_topics_per_peer = -1":    "gossip.max_topics_per_peer: expected 1..10000, got -1",
		"[gossip]\nmax_topics_per_peer = 10001": "gossip.max_topics_per_peer",
	}
	for in, want := range cases {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v; expected one containing %q", in, err, want)
		}
	}
	c2, err := Parse([]byte("[gossip]\nmax_topics_per_rpc = 20\nmax_topics_per_peer = 40"))
	if err != nil || c2.Gossip.MaxTopicsPerRPC != 20 || c2.Gossip.MaxTopicsPerPeer != 40 {
		t.Fatalf("Parse = %+v, %v; expected 20 and 40", c2.Gossip, err)
	}
}
