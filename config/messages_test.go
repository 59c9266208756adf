package config

import (
	"strings"
	"testing"
)

// The message service's limits are range-checked, each naming its setting.
func TestMessagesLimitsValidated(t *testing.T) {
	cases := map[string]string{
		"[messages]\nmax_handlers = 0":           "messages.max_handlers",
		"[messages]\nmax_handlers_per_peer = 0":  "messages.max_handlers_per_peer",
		"[messages]\nreply_timeout = '0s'":       "messages.reply_timeout",
		"[messages]\nreply_timeout = '2m'":       "messages.reply_timeout",
		"[messages]\nmax_streams_per_peer = 0":   "messages.max_streams_per_peer",
		"[messages]\nsubscription_max_bytes = 0": "messages.subscription_max_bytes",
	}
	for in, want := range cases {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Errorf("%q: accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not name %q", in, err, want)
		}
	}
	if _, err := Parse([]byte("[messages]\nmax_message_size = 67108864\n[swarm.resource_manager]\nenabled = false\nmax_memory_mb = 64")); err != nil {
		t.Errorf("memory check applied without the resource manager: %v", err)
	}
	if _, err := Parse([]byte("[messages]\nmax_handlers = 4\nmax_handlers_per_peer = 4")); err != nil {
		t.Errorf("per-peer equal to the total refused: %v", err)
	}
}
