package config

import (
	"reflect"
	"testing"
)

// FuzzConfig feeds arbitrary bytes to Parse (TOML decoding and Validate).
// It must never panic, and whatever it accepts must validate, marshal and
// parse back to the same configuration.
func FuzzConfig(f *testing.F) {
	for _, name := range Profiles() {
		c, _ := ForProfile(name)
		text, err := c.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(text)
	}
	for _, s := range []string{
		"",
		"network = 'x'",
		"[swarm.resource_manager]\nmax_memory_mb = 99999999999",
		"[swarm.conn_mgr]\nlow_water = 10\nhigh_water = 5\ngrace_period = '-1s'",
		"[api]\ntcp = '127.evil:1'",
		"[api]\ntcp = '[::1]:0'",
		"[tunnels]\ndial_timeout = '9999999999h'",
		"[swarm.relay_limit]\ndata = -1\nduration = '0s'",
		"[messages]\nmax_message_size = 67108864\nsend_queue = 65536",
		"[addresses]\nlisten = ['/ip4/127.0.0.1/tcp/0']\nannounce = []",
		"[discovery]\nbootstrap = ['/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGRUVh8FNuGC7DLwKqgnzNhzrz7vnpYr9QoGmVj8a1Yde']",
		"colour = 'blue'",
		"[[swarm]]",
		"a.b.c = 1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		text, err := c.Marshal()
		if err != nil {
			t.Fatalf("marshal an accepted config: %v", err)
		}
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("parse own output: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(normalize(back), normalize(c)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}

// normalize treats a nil list like an empty one: TOML writes both as [].
func normalize(c Config) Config {
	for _, l := range []*[]string{&c.Addresses.Listen, &c.Addresses.Announce, &c.Discovery.Bootstrap, &c.Swarm.Security, &c.Swarm.StaticRelays} {
		if *l == nil {
			*l = []string{}
		}
	}
	return c
}
