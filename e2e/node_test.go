package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-p2p/warren/config"
)

func TestTwoDaemonsConnectListAndPing(t *testing.T) {
	a, b := startDaemon(t, newRepo(t)), startDaemon(t, newRepo(t))

	var id struct {
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
	}
	jsonOut(t, a.Repo, &id, "id", "--json")
	if id.ID != a.ID || len(id.Addrs) == 0 {
		t.Fatalf("id --json = %+v, daemon said %s", id, a.ID)
	}
	for _, addr := range id.Addrs {
		if !strings.HasPrefix(addr, "/ip4/127.0.0.1/") || !strings.HasSuffix(addr, "/p2p/"+a.ID) {
			t.Errorf("address %s is not a full loopback multiaddr", addr)
		}
	}

	ok(t, b.Repo, "connect", a.Addr())
	for _, pair := range [][2]*daemon{{a, b}, {b, a}} {
		var peers []struct {
			ID   string `json:"id"`
			Addr string `json:"addr"`
		}
		jsonOut(t, pair[0].Repo, &peers, "peers", "--json")
		found := false
		for _, p := range peers {
			found = found || p.ID == pair[1].ID
		}
		if !found {
			t.Errorf("%s does not list %s: %+v", pair[0].ID, pair[1].ID, peers)
		}
	}
	var ping struct {
		Peer  string    `json:"peer"`
		RTTMS []float64 `json:"rtt_ms"`
	}
	jsonOut(t, b.Repo, &ping, "ping", a.ID, "-n", "3", "--json")
	if ping.Peer != a.ID || len(ping.RTTMS) != 3 {
		t.Fatalf("ping = %+v", ping)
	}
	if out := ok(t, b.Repo, "ping", a.ID, "-n", "1"); !strings.Contains(out, "pong from "+a.ID) {
		t.Fatalf("ping output: %s", out)
	}

	ok(t, b.Repo, "disconnect", a.ID)
	eventually(t, 5*time.Second, func() error {
		if strings.Contains(ok(t, b.Repo, "peers", "--json"), a.ID) {
			return fmt.Errorf("still connected to %s after disconnect", a.ID)
		}
		return nil
	})
	a.Stop()
	b.Stop()
}

func TestDaemonCreatesRepoOnFirstRun(t *testing.T) {
	repo := filepath.Join(shortTemp(t), "fresh")
	d := startDaemon(t, repo)
	if !strings.Contains(d.Output(), "initialized warren repo") || !config.Exists(repo) {
		t.Fatalf("first run did not create the repo:\n%s", d.Output())
	}
	d.Stop()
	// The second run reuses the identity.
	d2 := startDaemon(t, repo)
	if d2.ID != d.ID {
		t.Fatalf("identity changed across restarts: %s then %s", d.ID, d2.ID)
	}
	d2.Stop()
}

func TestInitRefusesToOverwrite(t *testing.T) {
	repo := newRepo(t)
	key, _ := os.ReadFile(filepath.Join(repo, config.KeyFile))
	fails(t, repo, []string{"already exists", repo}, "init")
	after, _ := os.ReadFile(filepath.Join(repo, config.KeyFile))
	if string(key) != string(after) {
		t.Fatal("init overwrote the identity")
	}
	fails(t, filepath.Join(shortTemp(t), "x"), []string{`"nope"`, "default, test"}, "init", "--profile", "nope")
}

func TestLockedRepoAndKilledDaemon(t *testing.T) {
	repo := newRepo(t)
	d := startDaemon(t, repo)
	fails(t, repo, []string{"already using this repo"}, "daemon")
	// The first daemon still serves.
	ok(t, repo, "id")

	d.Kill() // SIGKILL: no cleanup at all
	d2 := startDaemon(t, repo)
	if d2.ID != d.ID {
		t.Fatal("restart changed the identity")
	}
	d2.Stop()
}

func TestSignalShutdownCleansUp(t *testing.T) {
	repo := newRepo(t)
	d := startDaemon(t, repo)
	st, err := os.Stat(filepath.Join(repo, config.APISocket))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("API socket mode %v, want a socket with 0600", st.Mode())
	}
	d.Stop()
	for _, f := range []string{config.APIFile, config.APISocket} {
		if _, err := os.Stat(filepath.Join(repo, f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind after SIGTERM (err=%v)", f, err)
		}
	}
	fails(t, repo, []string{"no warren daemon is running"}, "id")
}

func TestTCPAPINeedsToken(t *testing.T) {
	repo := newRepo(t)
	setConfig(t, repo, "tcp = ''", "tcp = '127.0.0.1:0'")
	d := startDaemon(t, repo)
	ep, err := config.ReadEndpoint(repo)
	if err != nil || ep.TCP == "" {
		t.Fatalf("endpoint %+v %v", ep, err)
	}
	tok, _ := os.ReadFile(filepath.Join(repo, config.TokenFile))
	st, _ := os.Stat(filepath.Join(repo, config.TokenFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token mode %v", st.Mode().Perm())
	}
	get := func(auth string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+ep.TCP+"/v1/id", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, fmt.Sprint(body)
	}
	if code, body := get(""); code != http.StatusUnauthorized || !strings.Contains(body, "token") {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, _ := get("Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code, body := get("Bearer " + strings.TrimSpace(string(tok))); code != http.StatusOK || !strings.Contains(body, d.ID) {
		t.Errorf("right token: %d %s", code, body)
	}
	// The API listens on loopback only.
	host, _, _ := net.SplitHostPort(ep.TCP)
	if host != "127.0.0.1" {
		t.Errorf("API TCP host %s", host)
	}
	d.Stop()
}

func TestHealthAndMetrics(t *testing.T) {
	repo := newRepo(t)
	d := startDaemon(t, repo)
	ep, _ := config.ReadEndpoint(repo)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", ep.Unix)
	}}}
	for path, want := range map[string]string{
		"/v1/health": `"status":"ok"`,
		"/metrics":   "libp2p_",
		"/v1/nope":   "no API endpoint GET /v1/nope",
	} {
		resp, err := hc.Get("http://warren" + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: body lacks %q:\n%.300s", path, want, b)
		}
	}
	d.Stop()
}

func TestBadInputGivesClearErrors(t *testing.T) {
	repo := newRepo(t)
	d := startDaemon(t, repo)
	fails(t, repo, []string{`"/ip4/nope"`}, "connect", "/ip4/nope")
	fails(t, repo, []string{"/p2p/"}, "connect", "/ip4/127.0.0.1/tcp/1")
	fails(t, repo, []string{`"banana"`, "peer ID"}, "ping", "banana")
	fails(t, repo, []string{`"banana"`}, "disconnect", "banana")
	fails(t, repo, []string{"ping count 1001", "1 to 1000"}, "ping", d.ID, "-n", "1001") // the daemon's error
	fails(t, repo, []string{"own peer ID"}, "ping", d.ID)
	d.Stop()

	// A bad config value stops the daemon with a message that names it.
	setConfig(t, repo, "dht = 'server'", "dht = 'sometimes'")
	fails(t, repo, []string{"discovery.dht", "sometimes"}, "daemon")
}
