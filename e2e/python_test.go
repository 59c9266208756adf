package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonClient is examples/python/warren_client.py.
var pythonClient = filepath.Join("..", "examples", "python", "warren_client.py")

// python returns python3's path; CI must have it (the example is part of
// the API's contract), so its absence fails the test.
func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to run examples/python/warren_client.py against a daemon: %v", err)
	}
	return p
}

// pyCmd is the Python client run on the daemon of repo, found as the CLI
// finds it: through $WARREN_REPO.
func pyCmd(ctx context.Context, t *testing.T, repo string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, python(t), append([]string{pythonClient}, args...)...)
	c.Env = append(os.Environ(), "WARREN_REPO="+repo, "PYTHONDONTWRITEBYTECODE=1")
	return c
}

func pyRun(t *testing.T, repo string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := pyCmd(ctx, t, repo, args...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("python client %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// The Python example, using only the standard library, drives a real
// daemon over its unix socket: id and peers, a streamed recv of a message
// another daemon sends, send, tunnel ls, and the API's error codes.
func TestPythonClient(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))

	// No arguments: the node's id, its addresses and its peers.
	out, errOut, code := pyRun(t, a.Repo)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) == 0 || lines[0] != a.ID || !strings.Contains(out, "1 peers") || !strings.Contains(out, b.ID) {
		t.Fatalf("python client with no arguments: exit %d\nstdout: %s\nstderr: %s\nwant %s first and peer %s", code, out, errOut, a.ID, b.ID)
	}

	// A streamed recv gets what b sends.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc := pyCmd(ctx, t, a.Repo, "recv", "py", "-n", "1")
	stdout, err := rc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var rerr strings.Builder
	rc.Stderr = &rerr
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, a.Repo, "py", 1)
	ok(t, b.Repo, "send", a.ID, "py", "hello from go")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = rc.Process.Kill()
		_ = rc.Wait()
		t.Fatalf("python recv: %v (read %q)\nstderr: %s", err, line, rerr.String())
	}
	var m struct{ Type, From, ID, Payload, Text string }
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("python recv line %q: %v", line, err)
	}
	if m.Type != "py" || m.From != b.ID || m.Text != "hello from go" || len(m.ID) != 32 {
		t.Fatalf("python recv got %+v, want type py from %s with text %q", m, b.ID, "hello from go")
	}
	if err := rc.Wait(); err != nil || !strings.Contains(rerr.String(), "received 1") {
		t.Fatalf("python recv -n 1: %v\nstderr: %s", err, rerr.String())
	}

	// send reaches a Go recv on b.
	goRecv := startCLI(t, b.Repo, nil, "recv", "py2", "-n", "1", "--raw")
	waitSubscribers(t, b.Repo, "py2", 1)
	if out, errOut, code := pyRun(t, a.Repo, "send", b.ID, "py2", "hello from python"); code != 0 || !strings.Contains(out, "sent 1 message") {
		t.Fatalf("python send: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if got := goRecv.Line(); got != "hello from python" {
		t.Fatalf("warren recv got %q from the python client", got)
	}

	// tunnel ls lists a tunnel made by the CLI.
	ok(t, a.Repo, "tunnel", "listen", "/x/py", "/ip4/127.0.0.1/tcp/9", "--temp")
	if out, errOut, code := pyRun(t, a.Repo, "tunnel", "ls"); code != 0 || !strings.Contains(out, "/x/py") || !strings.Contains(out, "listen") {
		t.Fatalf("python tunnel ls: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// An error answer: the daemon's message and its code, exit 1.
	if _, errOut, code := pyRun(t, a.Repo, "send", a.ID, "bad type!", "x"); code != 1 ||
		!strings.Contains(errOut, `"bad type!"`) || !strings.Contains(errOut, "(invalid_argument)") {
		t.Fatalf("python send with a bad type: exit %d, stderr %q; want 1 and the daemon's invalid_argument error", code, errOut)
	}
	a.Stop()
	b.Stop()
}
