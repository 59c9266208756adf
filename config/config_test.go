package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProfilesValidateAndRoundTrip(t *testing.T) {
	for _, name := range Profiles() {
		c, err := ForProfile(name)
		if err != nil {
			t.Fatalf("profile %s: %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("profile %s does not validate: %v", name, err)
		}
		text, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("profile %s: parse own output: %v\n%s", name, err, text)
		}
		if back.Tunnels.DialTimeout.Std() != 30*time.Second || back.Network != c.Network ||
			strings.Join(back.Addresses.Listen, ",") != strings.Join(c.Addresses.Listen, ",") {
			t.Fatalf("profile %s: round trip changed the config: %+v", name, back)
		}
	}
}

func TestTestProfileStaysOnLoopback(t *testing.T) {
	c, _ := ForProfile(ProfileTest)
	for _, a := range c.Addresses.Listen {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") {
			t.Errorf("test profile listens on %s", a)
		}
	}
	if c.Discovery.MDNS || len(c.Discovery.Bootstrap) != 0 || c.Swarm.NATPortMap || c.Swarm.AutoNAT {
		t.Errorf("test profile reaches outside: %+v", c)
	}
}

func TestEveryKeyIsDocumented(t *testing.T) {
	c := Default()
	text, _ := c.Marshal()
	lines := strings.Split(string(text), "\n")
	for i, l := range lines {
		if strings.Contains(l, " = ") && !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("setting %q has no comment above it", l)
		}
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	cases := map[string]string{
		"network = 'has space'":                            "network",
		"[addresses]\nlisten = ['/ip4/nope/tcp/1']":        "addresses.listen",
		"[discovery]\ndht = 'sometimes'":                   "discovery.dht",
		"[discovery]\nbootstrap = ['/ip4/1.2.3.4/tcp/1']":  "discovery.bootstrap",
		"[swarm]\nsecurity = ['rot13']":                    "swarm.security",
		"[swarm.conn_mgr]\nlow_water = 10\nhigh_water = 5": "swarm.conn_mgr",
		"[api]\ntcp = '0.0.0.0:5000'":                      "api.tcp",
		"[tunnels]\nmax_conns_per_tunnel = 0":              "tunnels.max_conns_per_tunnel",
		"[api]\nmax_tcp_conns = 0":                         "api.max_tcp_conns",
		"[api]\nread_timeout = '0s'":                       "api.read_timeout",
		"[api]\nidle_timeout = '2h'":                       "api.idle_timeout",
		"[tunnels]\ndial_timeout = 'soon'":                 "soon",
		"[messages]\nmax_message_size = -1":                "messages.max_message_size",
		"[log]\nlevel = 'loud'":                            "log.level",
		"colour = 'blue'":                                  "colour",
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
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Init(dir, ProfileTest)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(r.Path(KeyFile))
	for _, f := range []string{KeyFile, ConfigFile} {
		st, err := os.Stat(r.Path(f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	_, err = Init(dir, ProfileDefault)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second init: %v", err)
	}
	again, _ := os.ReadFile(r.Path(KeyFile))
	if string(again) != string(key) {
		t.Fatal("second init changed the identity key")
	}
	if _, err := Init(t.TempDir(), "fast"); err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("unknown profile: %v", err)
	}
}

func TestOpenReadsWhatInitWrote(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(dir, ProfileTest)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Key.Equals(r.Key) || o.Config.Discovery.DHT != "server" {
		t.Fatalf("open got a different repo: %+v", o.Config.Discovery)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no warren repo") {
		t.Fatalf("open empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("network = 3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), ConfigFile) {
		t.Fatalf("open bad config: %v", err)
	}
}

func TestLockIsExclusiveAndReleased(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, ProfileTest); err != nil {
		t.Fatal(err)
	}
	a, _ := Open(dir)
	b, _ := Open(dir)
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	err := b.Lock()
	if err == nil || !strings.Contains(err.Error(), "already using this repo") {
		t.Fatalf("second lock: %v", err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = b.Unlock()
}

func TestTokenIsStableAndPrivate(t *testing.T) {
	r := &Repo{Dir: t.TempDir()}
	a, err := r.Token()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Token()
	if a != b || len(a) < 32 {
		t.Fatalf("token %q then %q", a, b)
	}
	st, _ := os.Stat(r.Path(TokenFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token mode %v", st.Mode().Perm())
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("WARREN_REPO", "/tmp/from-env")
	if d, _ := DefaultDir("/tmp/flag"); d != "/tmp/flag" {
		t.Errorf("flag: %s", d)
	}
	if d, _ := DefaultDir(""); d != "/tmp/from-env" {
		t.Errorf("env: %s", d)
	}
	t.Setenv("WARREN_REPO", "")
	t.Setenv("HOME", "/tmp/home")
	if d, _ := DefaultDir(""); d != "/tmp/home/.warren" {
		t.Errorf("home: %s", d)
	}
}

func TestReadTokenNeverCreatesOne(t *testing.T) {
	r := &Repo{Dir: t.TempDir()}
	if _, err := ReadToken(r.Dir); err == nil {
		t.Fatal("read a token that does not exist")
	}
	if _, err := os.Stat(r.Path(TokenFile)); !os.IsNotExist(err) {
		t.Fatalf("ReadToken created %s", TokenFile)
	}
	want, _ := r.Token()
	if got, err := ReadToken(r.Dir); err != nil || got != want {
		t.Fatalf("ReadToken = %q, %v; want %q", got, err, want)
	}
}
