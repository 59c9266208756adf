package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md from the defaults")

const docPath = "../docs/config.md"

const docHead = `# Configuration

The repo's ` + "`config.toml`" + ` holds every setting, each with its documentation. Its first setting,
` + "`profile`" + `, records the profile the repo was made with: a setting left out of the file keeps that
profile's value (trimming a test repo's file never turns mDNS, UPnP or ` + "`0.0.0.0:4101`" + ` back on); a
file with no ` + "`profile`" + ` line uses the default profile. An unknown setting or a bad value stops the
daemon with an error that names the line and the setting: ` + "`config.toml:3: unknown setting \"netwrok\"`" + `,
` + "`config.toml:5: messages.send_queue: expected an integer, got \"many\"`" + `.

Profiles (` + "`warren init --profile NAME`" + `, ` + "`warren daemon --init-profile NAME`" + `):

- ` + "`default`" + `: listens on all interfaces, TCP and QUIC on port 4101; mDNS, DHT (auto mode), NAT port
  mapping, AutoNAT, hole punching and the relay client on.
- ` + "`test`" + `: loopback only (` + "`127.0.0.1`" + `, TCP and QUIC, port 0), no bootstrap peers, no mDNS, DHT in
  server mode among the nodes you connect, no NAT traversal: for tests and local experiments.

The default profile's file, as ` + "`warren init`" + ` writes it (this page is checked against the code by
` + "`go test ./config`" + `; ` + "`go test ./config -update`" + ` rewrites it):

`

// rangesDoc is the table of numeric ranges, from the ranges Validate checks.
func rangesDoc(c *Config) string {
	var b strings.Builder
	b.WriteString("\n## Ranges\n\nEvery numeric setting is checked against its range (both ends included); a value outside it\n" +
		"stops the daemon with an error such as `swarm.resource_manager.max_memory_mb: expected 16..1048576, got\n" +
		"99999999999`. Durations are Go durations (`300ms`, `30s`, `2m`); a negative one is always refused.\n" +
		"`swarm.conn_mgr.low_water` must also be at most `high_water`. `api.tcp` must be an IP literal of\n" +
		"127.0.0.0/8 or `[::1]` with a port (`127.0.0.1:5050`); host names, `localhost` included, are refused.\n" +
		"`swarm.public_ranges` holds at most 64 CIDRs with no host bits set, none overlapping `127.0.0.0/8`;\n" +
		"an IPv6 one must lie within `2000::/3` (e.g. `2001:db8::/32`). It changes go-multiaddr's private and unroutable range lists, which are\n" +
		"global to the process: a second node in the same process must name the same ranges.\n\n" +
		"| Setting | Range |\n|---|---|\n")
	ints, durs := c.ranges()
	for _, r := range ints {
		fmt.Fprintf(&b, "| `%s` | %d..%d%s |\n", r.key, r.min, r.max, r.note)
	}
	for _, r := range durs {
		fmt.Fprintf(&b, "| `%s` | %s..%s%s |\n", r.key, fmtDuration(r.min), fmtDuration(r.max), r.note)
	}
	return b.String()
}

func TestConfigDocIsCurrent(t *testing.T) {
	c := Default()
	text, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := docHead + "```toml\n" + string(text) + "```\n" + rangesDoc(&c)
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != strings.TrimSpace(want) {
		t.Fatal("docs/config.md is out of date with config.Default(); run go test ./config -update")
	}
}
