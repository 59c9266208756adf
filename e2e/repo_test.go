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

	"github.com/warren-p2p/warren/config"
)

// runBounded runs `warren --repo repo args...` and kills it after limit: a
// command that should refuse at once must not run on as a daemon.
func runBounded(t *testing.T, limit time.Duration, repo string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--repo", repo}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{Out: out.String(), Err: errb.String()}
	if ctx.Err() != nil {
		t.Fatalf("warren %v still running after %s:\nstdout: %s\nstderr: %s", args, limit, r.Out, r.Err)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run warren %v: %v", args, err)
	}
	return r
}

// TestSecondDaemonRefusedWithoutLock deletes the first daemon's repo.lock:
// the second daemon's flock then succeeds, but it must still see the first
// daemon's API answering and refuse, leaving api.json and api.sock alone.
func TestSecondDaemonRefusedWithoutLock(t *testing.T) {
	repo := newRepo(t)
	d := startDaemon(t, repo)
	before, err := os.ReadFile(filepath.Join(repo, config.APIFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(repo, config.LockFile)); err != nil {
		t.Fatal(err)
	}

	r := runBounded(t, 30*time.Second, repo, "daemon", "--init-profile", "test")
	if r.Code == 0 {
		t.Fatalf("second daemon exited 0:\n%s%s", r.Out, r.Err)
	}
	want := fmt.Sprintf("another daemon (pid %d) is serving this repo at %s", d.cmd.Process.Pid, filepath.Join(repo, config.APISocket))
	if !strings.Contains(r.Err, want) || !strings.HasPrefix(r.Err, "warren: ") {
		t.Fatalf("second daemon's error %q does not say %q", r.Err, want)
	}
	if strings.Contains(r.Out, "peer ID") {
		t.Fatalf("second daemon started a node:\n%s", r.Out)
	}

	after, err := os.ReadFile(filepath.Join(repo, config.APIFile))
	if err != nil {
		t.Fatalf("api.json of the first daemon is gone: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("api.json changed:\n%s\n%s", before, after)
	}
	var ep config.Endpoint
	if err := json.Unmarshal(after, &ep); err != nil || ep.PID != d.cmd.Process.Pid {
		t.Fatalf("api.json %s does not name the first daemon (pid %d): %v", after, d.cmd.Process.Pid, err)
	}
	if st, err := os.Lstat(filepath.Join(repo, config.APISocket)); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("api.sock of the first daemon is gone: %v", err)
	}
	var id struct {
		ID string `json:"id"`
	}
	jsonOut(t, repo, &id, "id", "--json")
	if id.ID != d.ID {
		t.Fatalf("the API answers as %s, want the first daemon %s", id.ID, d.ID)
	}
	d.Stop()
	// With the first daemon gone the repo starts again.
	startDaemon(t, repo).Stop()
}

// TestDaemonRefusesUnsafeRepo checks the daemon and the client commands
// refuse a repo whose directory or files others could change.
func TestDaemonRefusesUnsafeRepo(t *testing.T) {
	repo := newRepo(t)
	if err := os.Chmod(repo, 0o777); err != nil {
		t.Fatal(err)
	}
	fails(t, repo, []string{"repo " + repo + ": directory is writable by group or others (mode 0777); run: chmod 700 " + repo}, "daemon")
	fails(t, repo, []string{"directory is writable by group or others"}, "id")
	if err := os.Chmod(repo, 0o700); err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(repo, config.KeyFile)
	if err := os.Chmod(key, 0o660); err != nil {
		t.Fatal(err)
	}
	fails(t, repo, []string{"identity.key is accessible by group or others (mode 0660); run: chmod 600 " + key}, "daemon")
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}

	// A link planted as repo.lock: refused, its target untouched.
	victim := filepath.Join(shortTemp(t), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(repo, config.LockFile)
	if err := os.Symlink(victim, lock); err != nil {
		t.Fatal(err)
	}
	fails(t, repo, []string{"repo.lock is a symbolic link", "rm " + lock}, "daemon")
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the daemon wrote through repo.lock: target is now %q", b)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}

	// A tunnels.json planted as a link is never restored.
	tunnels := filepath.Join(repo, config.TunnelsFile)
	if err := os.WriteFile(victim, []byte(`{"version":1,"tunnels":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, tunnels); err != nil {
		t.Fatal(err)
	}
	fails(t, repo, []string{"tunnels.json is a symbolic link"}, "daemon")
	if err := os.Remove(tunnels); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, repo).Stop()
}

// TestDaemonRefusesForeignRepo: a repo directory, or a tunnels.json in it,
// owned by another user (uid 65534) is refused before anything is read.
func TestDaemonRefusesForeignRepo(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown to another user")
	}
	// Another user made the directory before the owner's first start.
	planted := filepath.Join(shortTemp(t), "r")
	if err := os.Mkdir(planted, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(planted, config.TunnelsFile), []byte(`{"version":1,"tunnels":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	fails(t, planted, []string{"directory is owned by uid 65534, not by you (uid 0)", "use another --repo"}, "daemon", "--init-profile", "test")
	if _, err := os.Lstat(filepath.Join(planted, config.KeyFile)); err == nil {
		t.Fatal("the daemon created an identity in another user's directory")
	}

	repo := newRepo(t)
	tunnels := filepath.Join(repo, config.TunnelsFile)
	if err := os.WriteFile(tunnels, []byte(`{"version":1,"tunnels":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tunnels, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	fails(t, repo, []string{"tunnels.json is owned by uid 65534", "chown 0 " + tunnels}, "daemon")
}
