// Package e2e runs warren as a user would: the real binary, daemons as
// separate processes on --profile test repos, talking over 127.0.0.1.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-p2p/warren/internal/daemontest"
	"github.com/warren-p2p/warren/internal/testutil"
)

// bin is the warren binary built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warren-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if bin, err = daemontest.Build(context.Background(), dir, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if raceEnabled {
		// A race-built process sleeps 1 s at exit by default; every CLI call
		// here is a process.
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one CLI run printed.
type result struct {
	Out, Err string
	Code     int
}

// cli runs `warren --repo repo args...` to completion.
func cli(t *testing.T, repo string, args ...string) result {
	t.Helper()
	return cliIn(t, repo, nil, args...)
}

func cliIn(t *testing.T, repo string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--repo", repo}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{Out: out.String(), Err: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run warren %v: %v", args, err)
	}
	if strings.Contains(r.Err, "panic:") || strings.Contains(r.Err, "goroutine ") {
		t.Fatalf("warren %v panicked:\n%s", args, r.Err)
	}
	return r
}

// ok runs the CLI and fails the test unless it exits 0.
func ok(t *testing.T, repo string, args ...string) string {
	t.Helper()
	r := cli(t, repo, args...)
	if r.Code != 0 {
		t.Fatalf("warren %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Out, r.Err)
	}
	return r.Out
}

// fails runs the CLI, expects a non-zero exit with a one-line error that
// contains every want, and returns that line.
func fails(t *testing.T, repo string, want []string, args ...string) string {
	t.Helper()
	r := cli(t, repo, args...)
	if r.Code == 0 {
		t.Fatalf("warren %v: succeeded, expected an error\nstdout: %s", args, r.Out)
	}
	line := strings.TrimSpace(r.Err)
	if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "warren: ") {
		t.Errorf("warren %v: error is not one line starting with 'warren: ':\n%s", args, r.Err)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("warren %v: error %q does not mention %q", args, line, w)
		}
	}
	return line
}

// jsonOut runs the CLI and decodes its stdout.
func jsonOut(t *testing.T, repo string, v any, args ...string) {
	t.Helper()
	out := ok(t, repo, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("warren %v: output is not JSON: %v\n%s", args, err, out)
	}
}

// daemon is a running `warren daemon` process (daemontest.Daemon) of a
// test, which fails if it cannot start or stop.
type daemon struct {
	*daemontest.Daemon
	t   *testing.T
	cmd *exec.Cmd
}

// newRepo makes a --profile test repo and returns its path.
func newRepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(shortTemp(t), "r")
	ok(t, repo, "init", "--profile", "test")
	return repo
}

// shortTemp returns a short temporary directory: unix socket paths are
// limited to 108 bytes, and t.TempDir() paths can be long.
func shortTemp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "we")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startDaemon starts a daemon on repo and waits until its API answers.
func startDaemon(t *testing.T, repo string, extra ...string) *daemon {
	t.Helper()
	return launchDaemon(t, repo, nil, extra...)
}

// startDaemonInNetns starts a daemon inside network namespace ns. Its API
// socket is a file, so the CLI reaches it from any namespace.
func startDaemonInNetns(t *testing.T, ns, repo string, extra ...string) *daemon {
	t.Helper()
	return launchDaemon(t, repo, []string{"ip", "netns", "exec", ns}, extra...)
}

// launchDaemon runs `warren daemon` on repo, behind the command prefix wrap
// (which must exec the daemon in its own process), and waits for its API.
func launchDaemon(t *testing.T, repo string, wrap []string, extra ...string) *daemon {
	t.Helper()
	dd, err := daemontest.Start(context.Background(), daemontest.Options{
		Bin: bin, Repo: repo, Wrap: wrap, Args: append([]string{"--init-profile", "test"}, extra...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dd.Kill)
	return &daemon{Daemon: dd, t: t, cmd: dd.Cmd}
}

// Addr returns the daemon's first TCP multiaddr with /p2p/.
func (d *daemon) Addr() string {
	var id struct {
		Addrs []string `json:"addrs"`
	}
	jsonOut(d.t, d.Repo, &id, "id", "--json")
	for _, a := range id.Addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	d.t.Fatalf("daemon has no TCP address: %v", id.Addrs)
	return ""
}

// Stop ends the daemon with SIGTERM and checks it exited cleanly.
func (d *daemon) Stop() {
	d.t.Helper()
	if err := d.Daemon.Stop(); err != nil {
		d.t.Fatalf("%v\n%s", err, d.Output())
	}
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	testutil.EventuallyNil(t, timeout, f)
}

// setConfig edits a stopped daemon's config.toml: each pair is a line as
// init wrote it and the line to put in its place. A line that is not there
// fails the test, so a renamed setting cannot make an edit silently vanish.
func setConfig(t *testing.T, repo string, pairs ...string) {
	t.Helper()
	if err := daemontest.ReplaceConfigLines(repo, pairs...); err != nil {
		t.Fatal(err)
	}
}
