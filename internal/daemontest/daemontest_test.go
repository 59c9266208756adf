package daemontest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-p2p/warren/config"
)

func TestEditConfig(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "r")
	if _, err := config.Init(repo, config.ProfileTest); err != nil {
		t.Fatal(err)
	}
	if err := EditConfigFile(repo, func(c *config.Config) { c.Messages.MaxMessageSize = 1000 }); err != nil {
		t.Fatal(err)
	}
	r, err := config.Open(repo)
	if err != nil || r.Config.Messages.MaxMessageSize != 1000 {
		t.Fatalf("after the edit: %v, %+v", err, r.Config.Messages)
	}
	if err := EditConfigFile(repo, func(c *config.Config) { c.Network = "a b" }); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("an invalid edit: %v", err)
	}
	if err := ReplaceConfigLines(repo, "dht = 'server'", "dht = 'sometimes'"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(repo, config.ConfigFile))
	if !strings.Contains(string(b), "dht = 'sometimes'") {
		t.Fatal("line not replaced")
	}
	if err := ReplaceConfigLines(repo, "no such line", "x"); err == nil || !strings.Contains(err.Error(), "no such line") {
		t.Fatalf("a missing line: %v", err)
	}
}
