package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A setting left out of config.toml keeps the value of the profile the repo
// was made with, which the file records.
func TestTrimmedConfigKeepsProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	if _, err := Init(dir, ProfileTest); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "profile = 'test'") {
		t.Fatalf("config.toml does not record its profile:\n%s", text)
	}
	// A user trims the file to the one line they care about.
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("profile = 'test'\nnetwork = 'mine'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if c.Network != "mine" || c.Discovery.MDNS || c.Swarm.NATPortMap || c.Addresses.Listen[0] != "/ip4/127.0.0.1/tcp/0" {
		t.Fatalf("trimmed test config: network %q, mdns %v, upnp %v, listen %v", c.Network, c.Discovery.MDNS, c.Swarm.NATPortMap, c.Addresses.Listen)
	}
	// No profile line: the default profile.
	c, err = Parse([]byte("network = 'x'\n"))
	if err != nil || !c.Discovery.MDNS || c.Profile != ProfileDefault {
		t.Fatalf("no profile: %v %+v", err, c.Discovery)
	}
	if _, err := Parse([]byte("profile = 'prod'\n")); err == nil || !strings.Contains(err.Error(), `profile "prod": expected one of default, test`) {
		t.Fatalf("unknown profile: %v", err)
	}
}

// Errors name the file's line and the setting as the file spells it, never
// Go's type paths.
func TestConfigErrorsSpeakTOML(t *testing.T) {
	for in, want := range map[string]string{
		"network = 'x'\nnetwrok = 'y'\n":                   `config.toml:2: unknown setting "netwrok"`,
		"[messages]\nsend_queue = \"many\"\n":              `config.toml:2: messages.send_queue: expected an integer, got "many"`,
		"[discovery]\nmdns = 'yes'\n":                      `config.toml:2: discovery.mdns: expected true or false, got 'yes'`,
		"[swarm]\nsecurity = 'tls'\n":                      `config.toml:2: swarm.security: expected a list of strings`,
		"[api]\n\nread_timeout = 'soon'\n":                 `config.toml:3: api.read_timeout: expected a duration such as 30s or 2m, got 'soon'`,
		"[swarm.conn_mgr]\nlow_water = 1\nhigh_wter = 2\n": `config.toml:3: unknown setting "swarm.conn_mgr.high_wter"`,
		"network = \n":                                     `config.toml:1:`,
	} {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
			continue
		}
		for _, bad := range []string{"config.Messages", "struct field", "of type", "~~~"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%q: error %q has Go or excerpt text %q", in, err, bad)
			}
		}
	}
}
