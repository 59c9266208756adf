package e2e

// The CLI as a person meets it (issue 12): interrupts and stdin at a
// terminal, finding the daemon, cobra's behaviour, tunnels, messages at a
// terminal, JSON shapes, errors in the user's words, tables and config
// semantics. Each test runs the built binary against test-profile daemons.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
)

// ptyProc is a CLI process whose stdin is a pseudo-terminal it controls:
// writing ^C to the terminal interrupts it as a person's Ctrl-C does.
type ptyProc struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	term   *os.File // the terminal's master side
	mu     sync.Mutex
	out    bytes.Buffer
	errb   bytes.Buffer
	done   chan struct{}
	err    error
	drains sync.WaitGroup
}

func startPTY(t *testing.T, repo string, args ...string) *ptyProc {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyProc{t: t, args: args, term: master, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--repo", repo}, args...)...)
	p.cmd.Stdin = tty
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{&p.mu, &p.out}, lockedWriter{&p.mu, &p.errb}
	// Its own session with the terminal as controlling terminal: ^C on the
	// terminal sends SIGINT to it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	p.drains.Add(1)
	go func() { defer p.drains.Done(); _, _ = io.Copy(io.Discard, master) }() // the terminal's echo
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		master.Close()
		p.drains.Wait()
	})
	return p
}

func (p *ptyProc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

func (p *ptyProc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Type writes to the terminal as a person types.
func (p *ptyProc) Type(s string) {
	p.t.Helper()
	if _, err := p.term.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// Wait returns the exit code, failing the test after timeout.
func (p *ptyProc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("warren %v did not exit within %s\nstderr: %s", p.args, timeout, p.Stderr())
	}
	if ee, isExit := p.err.(*exec.ExitError); isExit {
		return ee.ExitCode()
	} else if p.err != nil {
		p.t.Fatalf("warren %v: %v", p.args, p.err)
	}
	return 0
}

func short(id string) string { return id[:4] + "…" + id[len(id)-4:] }

// TestCLIInterruptsAndStdin: at a terminal, reading stdin prints a hint;
// Ctrl-C ends send, pub and send/pub --lines at once, even mid-read; Ctrl-D
// ends the message; --lines skips empty lines and says so.
func TestCLIInterruptsAndStdin(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	const hint = "warren: reading the message from stdin; Ctrl-D to end"
	for _, args := range [][]string{
		{"send", a.ID, "t"},
		{"pub", "news"},
		{"send", "--lines", a.ID, "t"},
		{"pub", "--lines", "news"},
	} {
		p := startPTY(t, b.Repo, args...)
		eventually(t, 20*time.Second, func() error {
			if !strings.Contains(p.Stderr(), hint) {
				return fmt.Errorf("warren %v at a terminal: no stdin hint in %q", args, p.Stderr())
			}
			return nil
		})
		if args[1] == "--lines" {
			p.Type("typed but not ended") // mid-line: the daemon is reading the body
			time.Sleep(200 * time.Millisecond)
		}
		p.Type("\x03") // Ctrl-C
		if code := p.Wait(5 * time.Second); code != 130 || !strings.Contains(p.Stderr(), "warren: interrupted") {
			t.Errorf("warren %v after Ctrl-C: exit %d, stderr %q; want 130 and 'warren: interrupted'", args, code, p.Stderr())
		}
	}

	// Ctrl-D ends the message; it is sent whole.
	rcv := startCLI(t, a.Repo, nil, "recv", "typed", "-n", "1", "--json")
	waitSubscribers(t, a.Repo, "typed", 1)
	p := startPTY(t, b.Repo, "send", a.ID, "typed")
	p.Type("hello\n\x04")
	if code := p.Wait(20 * time.Second); code != 0 || p.Stdout() != "sent 1 message to "+a.ID+"\n" {
		t.Fatalf("send ended by Ctrl-D: exit %d, stdout %q, stderr %q", code, p.Stdout(), p.Stderr())
	}
	var m struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(rcv.Line()), &m); err != nil || m.Text != "hello\n" {
		t.Fatalf("typed message received as %+v (%v)", m, err)
	}

	// From a pipe there is no hint.
	if r := cliIn(t, b.Repo, []byte("piped"), "send", a.ID, "t"); r.Code != 0 || r.Err != "" {
		t.Errorf("send from a pipe: exit %d, stderr %q (want no hint)", r.Code, r.Err)
	}

	// --lines skips empty lines, and says how many.
	rcv = startCLI(t, a.Repo, nil, "recv", "lines", "-n", "2", "--raw")
	waitSubscribers(t, a.Repo, "lines", 1)
	r := cliIn(t, b.Repo, []byte("one\n\ntwo\n\n"), "send", "--lines", a.ID, "lines")
	if want := "sent 2 messages to " + a.ID + " (skipped 2 empty lines)\n"; r.Code != 0 || r.Out != want {
		t.Errorf("send --lines with empty lines: exit %d, %q, want %q (stderr %q)", r.Code, r.Out, want, r.Err)
	}
	if got := rcv.Line() + "," + rcv.Line(); got != "one,two" {
		t.Errorf("send --lines delivered %q, want one,two", got)
	}
	sub := startCLI(t, a.Repo, nil, "sub", "lines", "-n", "2", "--raw")
	waitTopicSubscriptions(t, a.Repo, "lines", 1)
	r = cliIn(t, b.Repo, []byte("\nx\n\ny\n"), "pub", "--lines", "--timeout", "20s", "lines")
	if want := "published 2 messages to topic \"lines\" (skipped 2 empty lines)\n"; r.Code != 0 || r.Out != want {
		t.Errorf("pub --lines with empty lines: exit %d, %q, want %q (stderr %q)", r.Code, r.Out, want, r.Err)
	}
	if got := []string{sub.Line(), sub.Line()}; !sameSet(got, []string{"x", "y"}) {
		t.Errorf("pub --lines delivered %q, want x and y", got)
	}
}

// TestCLITopicsLeave: a topic a failed publish joined is left at once;
// 'warren topics leave' leaves one, refused while 'sub' reads it.
func TestCLITopicsLeave(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	fails(t, a.Repo, []string{`"newz"`, "no peer subscribed"}, "pub", "newz", "typo", "--timeout", "200ms")
	if out := ok(t, a.Repo, "topics"); out != "no topics\n" {
		t.Errorf("topics after a failed publish: %q, want no topics (the typo is not kept joined)", out)
	}
	if out := ok(t, a.Repo, "topics", "--json"); out != "[]\n" {
		t.Errorf("topics --json: %q, want []", out)
	}
	sub := startCLI(t, b.Repo, nil, "sub", "news")
	waitTopicSubscriptions(t, b.Repo, "news", 1)
	ok(t, a.Repo, "pub", "news", "hello", "--timeout", "20s")
	fails(t, b.Repo, []string{`"news"`, "1 subscription still open"}, "topics", "leave", "news")
	sub.Interrupt()
	if code := sub.Wait(10 * time.Second); code != 0 {
		t.Fatalf("sub after Ctrl-C: exit %d", code)
	}
	for _, d := range []*daemon{b, a} { // the reader and the publisher
		eventually(t, 10*time.Second, func() error {
			if r := cli(t, d.Repo, "topics", "leave", "news"); r.Code != 0 || r.Out != "left topic \"news\"\n" {
				return fmt.Errorf("topics leave news: exit %d %q %q", r.Code, r.Out, r.Err)
			}
			return nil
		})
		if out := ok(t, d.Repo, "topics"); out != "no topics\n" {
			t.Errorf("topics after leave: %q", out)
		}
		fails(t, d.Repo, []string{`"news"`, "not joined"}, "topics", "leave", "news")
	}
}

// TestCLIFindingTheDaemon: hints repeat --repo; a SIGKILLed daemon's
// api.json is called stale; a repo path too long for a unix socket is said
// to be; 'warren wait' waits for a daemon started in the background.
func TestCLIFindingTheDaemon(t *testing.T) {
	repo := newRepo(t)
	fails(t, repo, []string{"no warren daemon is running on repo " + repo, "warren --repo " + repo + " daemon"}, "id")
	fails(t, repo, []string{"did not answer within 300ms"}, "wait", "--timeout", "300ms")

	// The README's way: start it in the background, wait, use it.
	cmd := exec.Command(bin, "--repo", repo, "daemon")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-waited })
	ok(t, repo, "wait")
	ok(t, repo, "id") // at once: wait returned only once the API answered

	// SIGKILL leaves api.json behind.
	_ = cmd.Process.Kill()
	<-waited
	line := fails(t, repo, []string{fmt.Sprintf("daemon not running (stale api.json from pid %d", cmd.Process.Pid), "warren --repo " + repo + " daemon"}, "id")
	if strings.Contains(line, "connection refused") || strings.Contains(line, "dial unix") {
		t.Errorf("stale api.json error is raw: %s", line)
	}

	// A repo path over what a unix socket path can hold.
	long := filepath.Join(shortTemp(t), strings.Repeat("r", 100))
	line = fails(t, long, []string{long, "too long for its API's unix socket", "shorter --repo"}, "daemon", "--init-profile", "test")
	if strings.Contains(line, "invalid argument") {
		t.Errorf("long repo path: %s", line)
	}
}

// TestCLIShutdown: `warren shutdown` stops the daemon as SIGTERM does
// (exit status 0, api.json removed, tunnels saved and restored at the next
// start), returns once its process has exited, and says so when no daemon
// runs.
func TestCLIShutdown(t *testing.T) {
	repo := newRepo(t)
	d := startDaemon(t, repo)
	srv := startTarget(t, false)
	tunnelListen(t, d, "/x/keep", srv.maddr)

	r := cli(t, repo, "shutdown", "--timeout", "30s")
	if r.Code != 0 || r.Out != "daemon stopped\n" {
		t.Fatalf("shutdown: exit %d\nstdout: %q\nstderr: %s\ndaemon:\n%s", r.Code, r.Out, r.Err, d.Output())
	}
	// It waited for the process: it has exited (perhaps not yet reaped by
	// the harness, whose goroutine waits for it).
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.PID())); err == nil {
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] != "Z" {
			t.Fatalf("shutdown returned while the daemon (pid %d) still runs, state %s", d.PID(), f[0])
		}
	}
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("the daemon still runs after shutdown returned:\n%s", d.Output())
	}
	if err := d.Err(); err != nil {
		t.Fatalf("daemon exit after shutdown: %v\n%s", err, d.Output())
	}
	if !strings.Contains(d.Output(), "POST /v1/shutdown") {
		t.Errorf("the daemon's log does not say why it stopped:\n%s", d.Output())
	}
	if _, err := os.Stat(filepath.Join(repo, "api.json")); !os.IsNotExist(err) {
		t.Errorf("api.json after shutdown: %v", err)
	}
	fails(t, repo, []string{"no warren daemon is running on repo " + repo, "warren --repo " + repo + " daemon"}, "shutdown")

	d = startDaemon(t, repo)
	if ts := tunnels(t, d); len(ts) != 1 || ts[0].Protocol != "/x/keep" || ts[0].Error != "" {
		t.Fatalf("tunnels after shutdown and restart: %+v (want /x/keep, running)", ts)
	}
	// --wait=false returns once the daemon accepted; the process still exits 0.
	if out := ok(t, repo, "shutdown", "--wait=false"); out != "daemon stopping\n" {
		t.Errorf("shutdown --wait=false: %q", out)
	}
	select {
	case <-d.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not exit within 30s of shutdown --wait=false:\n%s", d.Output())
	}
	if err := d.Err(); err != nil {
		t.Fatalf("daemon exit after shutdown --wait=false: %v\n%s", err, d.Output())
	}
}

// TestCLICobraBehaviour: unknown subcommands under groups fail with a
// suggestion on its own line; a missing argument prints the usage line;
// every command's help has examples; completion completes flag values and,
// from the daemon, peer IDs, message types, topics and tunnel ids.
func TestCLICobraBehaviour(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tunnel", "lss"}, "warren: unknown command \"lss\" for \"warren tunnel\"\ndid you mean: warren tunnel ls?\n"},
		{[]string{"msg", "stat"}, "warren: unknown command \"stat\" for \"warren msg\"\ndid you mean: warren msg stats?\n"},
		{[]string{"recv"}, "warren: accepts 1 arg(s), received 0\nusage: warren recv <type>\n"},
		{[]string{"tunnel", "listen", "/x/a"}, "usage: warren tunnel listen <protocol> <target-multiaddr>\n"},
	} {
		r := cli(t, a.Repo, c.args...)
		if r.Code != 1 || !strings.HasSuffix(r.Err, c.want) || r.Out != "" {
			t.Errorf("warren %v: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.args, r.Code, r.Out, r.Err, c.want)
		}
	}

	// Every command the reference lists has examples in its help.
	doc, err := os.ReadFile("../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(doc), "\n") {
		path, found := strings.CutPrefix(l, "## warren")
		if !found {
			continue
		}
		n++
		args := append(strings.Fields(path), "--help")
		if out := ok(t, a.Repo, args...); !strings.Contains(out, "\nExamples:\n") {
			t.Errorf("warren %v has no Examples:\n%s", args, out)
		}
	}
	if n < 30 {
		t.Fatalf("docs/cli.md lists %d commands", n)
	}

	// Completion: the scripts, flag values, and the daemon's names.
	if out := ok(t, a.Repo, "completion", "bash"); !strings.Contains(out, "__start_warren") {
		t.Errorf("completion bash is no bash completion script")
	}
	rcv := startCLI(t, a.Repo, nil, "recv", "chat")
	sub := startCLI(t, a.Repo, nil, "sub", "news")
	waitSubscribers(t, a.Repo, "chat", 1)
	waitTopicSubscriptions(t, a.Repo, "news", 1)
	tun := tunnelListen(t, a, "/x/c", "/ip4/127.0.0.1/tcp/9", "--temp")
	complete := func(args ...string) []string {
		t.Helper()
		out := ok(t, a.Repo, append([]string{"__complete"}, args...)...)
		var vals []string
		for _, l := range strings.Split(out, "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				vals = append(vals, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return vals
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"recv", "--policy", ""}, []string{"block", "drop-oldest", "drop-newest"}},
		{[]string{"tunnel", "ls", "--kind", ""}, []string{"listen", "forward"}},
		{[]string{"send", "--priority", ""}, []string{"high", "normal", "low"}},
		{[]string{"send", ""}, []string{b.ID}},
		{[]string{"ping", "12D3"}, []string{b.ID}},
		{[]string{"send", b.ID, ""}, []string{"chat"}},
		{[]string{"recv", "ch"}, []string{"chat"}},
		{[]string{"pub", ""}, []string{"news"}},
		{[]string{"topics", "leave", ""}, []string{"news"}},
		{[]string{"tunnel", "close", ""}, []string{strconv.FormatUint(tun.ID, 10)}},
	} {
		if got := complete(c.args...); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("complete %q: %q, want %q", c.args, got, c.want)
		}
	}
	rcv.Interrupt()
	sub.Interrupt()
	rcv.Wait(10 * time.Second)
	sub.Wait(10 * time.Second)
}

// TestCLITunnelFailuresAndClose: a forward whose peer has no such listener
// shows its failures and last error in ls; close takes the id ls shows;
// closing nothing fails; tables fit 120 columns; empty ones say so.
func TestCLITunnelFailuresAndClose(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	if out := ok(t, b.Repo, "tunnel", "ls"); out != "no tunnels\n" {
		t.Errorf("empty tunnel ls: %q", out)
	}
	if out := ok(t, b.Repo, "tunnel", "streams"); out != "no streams\n" {
		t.Errorf("empty tunnel streams: %q", out)
	}
	f, hp := tunnelForward(t, b, "/x/nobody-listens", "/ip4/127.0.0.1/tcp/0", a.ID)
	// The client is reset (possibly before Dial returns).
	if c, err := net.Dial("tcp", hp); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client of a forward with no remote listener read a byte")
		}
		c.Close()
	}
	eventually(t, 10*time.Second, func() error {
		var ts []map[string]any
		jsonOut(t, b.Repo, &ts, "tunnel", "ls", "--json")
		if len(ts) != 1 || ts[0]["streams_failed"] != 1.0 || !strings.Contains(fmt.Sprint(ts[0]["last_error"]), "protocol") {
			return fmt.Errorf("tunnel ls --json after a failed connection: %v", ts)
		}
		return nil
	})
	out := ok(t, b.Repo, "tunnel", "ls")
	if !strings.Contains(out, "0/0/1") || !strings.Contains(out, "failing") || !strings.Contains(out, fmt.Sprintf("tunnel %d last failure: ", f.ID)) || strings.Contains(out, " ok") {
		t.Errorf("tunnel ls does not show the failure:\n%s", out)
	}
	fitsTable(t, out)
	if out := ok(t, b.Repo, "tunnel", "ls", "--wide"); !strings.Contains(out, a.ID) {
		t.Errorf("tunnel ls --wide lacks the whole peer ID:\n%s", out)
	}
	id := strconv.FormatUint(f.ID, 10)
	if out := ok(t, b.Repo, "tunnel", "close", id); out != "closed 1 tunnel and 0 streams\n" {
		t.Errorf("tunnel close %s: %q", id, out)
	}
	fails(t, b.Repo, []string{"no tunnel matched", "warren tunnel ls"}, "tunnel", "close", id)
	fails(t, b.Repo, []string{"no tunnel matched"}, "tunnel", "close", "--protocol", "/x/none")
	fails(t, b.Repo, []string{"see warren tunnel streams"}, "tunnel", "streams", "close", "99")
	if out := ok(t, b.Repo, "tunnel", "ls", "--json"); out != "[]\n" {
		t.Errorf("tunnel ls --json after close: %q", out)
	}
}

// fitsTable checks a table's lines fit 120 columns.
func fitsTable(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("table line of %d columns:\n%s", n, l)
		}
	}
}

// TestCLITunnelRestoreRetried: a saved forward whose port is busy at start
// is listed down, retried with backoff, logged once, and comes up when the
// port is free.
func TestCLITunnelRestoreRetried(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	f, _ := tunnelForward(t, b, "/x/later", "/ip4/127.0.0.1/tcp/0", a.ID)
	port := f.ListenAddress[strings.LastIndex(f.ListenAddress, "/")+1:]
	b.Stop()
	blocker, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	b = startDaemon(t, b.Repo)
	if out := ok(t, b.Repo, "tunnel", "ls"); !strings.Contains(out, "down:") {
		t.Errorf("tunnel ls with the port busy:\n%s", out)
	}
	time.Sleep(3500 * time.Millisecond) // retries at 1 s and 3 s, both failing
	blocker.Close()
	eventually(t, 20*time.Second, func() error {
		if ts := tunnels(t, b); len(ts) != 1 || ts[0].Error != "" {
			return fmt.Errorf("the forward did not come back once its port was free: %+v", ts)
		}
		return nil
	})
	if n := strings.Count(b.Output(), "restore failed"); n != 1 {
		t.Errorf("the restore error was logged %d times, want once:\n%s", n, b.Output())
	}
}

// TestCLIMessagesAtTerminalAndJSON: recv and sub in text mode show the
// sender and escape control characters (a payload with ESC and newlines
// is one line, with no ESC byte); binary payloads are <N bytes> unless
// --raw; --json has payload and text for both, and empty lists are [].
func TestCLIMessagesAtTerminalAndJSON(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	for _, args := range [][]string{{"tunnel", "streams", "--json"}, {"topics", "--json"}} {
		if out := ok(t, a.Repo, args...); out != "[]\n" {
			t.Errorf("warren %v: %q, want []", args, out)
		}
	}
	var st map[string]json.RawMessage
	jsonOut(t, a.Repo, &st, "msg", "stats", "--json")
	if string(st["subscriptions"]) != "[]" || string(st["peers"]) != "[]" {
		t.Errorf("msg stats --json: subscriptions %s, peers %s; want []", st["subscriptions"], st["peers"])
	}

	evil := "hi\x1b[31m red\x1b]0;owned\x07\nsecond line"
	escaped := `hi\x1b[31m red\x1b]0;owned\x07\nsecond line`
	binary := string([]byte{0, 1, 0xff, 0xfe})
	text := startCLI(t, a.Repo, nil, "recv", "chat", "-n", "3")
	raw := startCLI(t, a.Repo, nil, "recv", "chat", "-n", "3", "--raw")
	js := startCLI(t, a.Repo, nil, "recv", "chat", "-n", "3", "--json")
	waitSubscribers(t, a.Repo, "chat", 3)
	ok(t, b.Repo, "send", a.ID, "chat", evil)
	if r := cliIn(t, b.Repo, []byte(binary), "send", a.ID, "chat"); r.Code != 0 {
		t.Fatalf("send binary: %s", r.Err)
	}
	ok(t, b.Repo, "send", a.ID, "chat", "é ünïcode")
	for i, want := range []string{short(b.ID) + ": " + escaped, short(b.ID) + ": <4 bytes>", short(b.ID) + ": é ünïcode"} {
		if got := text.Line(); got != want {
			t.Errorf("recv line %d: %q, want %q", i, got, want)
		}
	}
	if got := raw.Line(); got != "hi\x1b[31m red\x1b]0;owned\x07" {
		t.Errorf("recv --raw: %q, want the payload's bytes", got)
	}
	for i, wantText := range []*string{&evil, nil, ptr("é ünïcode")} {
		var m map[string]any
		line := js.Line()
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("recv --json: %v: %s", err, line)
		}
		txt, has := m["text"]
		if _, p := m["payload"]; !p || has != (wantText != nil) || (has && txt != *wantText) {
			t.Errorf("recv --json message %d: %s", i, line)
		}
	}

	sub := startCLI(t, a.Repo, nil, "sub", "news", "-n", "1")
	subJS := startCLI(t, a.Repo, nil, "sub", "news", "-n", "1", "--json")
	waitTopicSubscriptions(t, a.Repo, "news", 2)
	ok(t, b.Repo, "pub", "news", evil, "--timeout", "20s")
	if got := sub.Line(); got != short(b.ID)+": "+escaped {
		t.Errorf("sub: %q, want %q", got, short(b.ID)+": "+escaped)
	}
	var m map[string]any
	line := subJS.Line()
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if _, hasData := m["data"]; hasData || m["payload"] == nil || m["text"] != evil {
		t.Errorf("sub --json has not recv's payload and text fields: %s", line)
	}
	// A reply printed at a terminal cannot steer it either; in a pipe it is
	// the reply's bytes.
	resp := startCLI(t, a.Repo, nil, "respond", "evil", "--exec", `printf 'x\033[2Jy\tz\n'`, "-n", "2")
	eventually(t, 20*time.Second, func() error {
		if !stats(t, a.Repo).Types["evil"].Handler {
			return fmt.Errorf("no responder for evil yet")
		}
		return nil
	})
	if out := ok(t, b.Repo, "request", a.ID, "evil", ""); out != "x\x1b[2Jy\tz\n" {
		t.Errorf("request in a pipe: %q, want the reply's bytes", out)
	}
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	req := exec.Command(bin, "--repo", b.Repo, "request", a.ID, "evil", "")
	req.Stdout, req.Stderr = tty, io.Discard
	if err := req.Run(); err != nil {
		t.Fatalf("request at a terminal: %v", err)
	}
	tty.Close()
	var screen bytes.Buffer
	_, _ = io.Copy(&screen, master) // ends with EIO once the terminal is closed
	master.Close()
	if got := strings.ReplaceAll(screen.String(), "\r\n", "\n"); got != `x\x1b[2Jy`+"\tz\n" {
		t.Errorf("request at a terminal printed %q, want the ESC escaped", got)
	}
	resp.Wait(20 * time.Second)

	// The README's one-liner reads payloads as text.
	if _, err := exec.LookPath("jq"); err != nil {
		t.Log("no jq: the README's jq one-liner is not run")
		return
	}
	pipe := exec.Command("sh", "-c", `"$0" --repo "$1" recv jq -n 1 --json | jq -r .text`, bin, a.Repo)
	var pout bytes.Buffer
	pipe.Stdout, pipe.Stderr = &pout, io.Discard
	if err := pipe.Start(); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, a.Repo, "jq", 1)
	ok(t, b.Repo, "send", a.ID, "jq", "line one\nline two")
	if err := pipe.Wait(); err != nil || pout.String() != "line one\nline two\n" {
		t.Errorf("recv --json | jq -r .text: %q (%v)", pout.String(), err)
	}
}

func ptr(s string) *string { return &s }

// TestCLIErrorsInUsersWords: config errors name the line and the setting;
// API errors name JSON fields and flags; a too-big send names its size and
// the setting; non-ASCII prints as typed; ping counts "1 ping"; tables use
// short IDs and fit; empty ones say so.
func TestCLIErrorsInUsersWords(t *testing.T) {
	repo := newRepo(t)
	text, err := os.ReadFile(filepath.Join(repo, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) int {
		for i, l := range strings.Split(string(text), "\n") {
			if strings.HasPrefix(l, s) {
				return i + 1
			}
		}
		t.Fatalf("config.toml has no line %q", s)
		return 0
	}
	setConfig(t, repo, "network = 'warren'", "netwrok = 'warren'")
	line := fails(t, repo, []string{fmt.Sprintf(`config.toml:%d: unknown setting "netwrok"`, lineOf("network = "))}, "daemon")
	setConfig(t, repo, "netwrok = 'warren'", "network = 'warren'", "send_queue = 4096", `send_queue = "many"`)
	line += fails(t, repo, []string{fmt.Sprintf(`config.toml:%d: messages.send_queue: expected an integer, got "many"`, lineOf("send_queue = "))}, "daemon")
	for _, bad := range []string{"config.Messages", "of type", "~~~", "struct field"} {
		if strings.Contains(line, bad) {
			t.Errorf("config error speaks Go (%q): %s", bad, line)
		}
	}
	setConfig(t, repo, `send_queue = "many"`, "send_queue = 4096")

	a := startDaemon(t, repo)
	b := startDaemon(t, newRepo(t))
	if out := ok(t, b.Repo, "peers"); out != "no peers\n" {
		t.Errorf("peers with none: %q", out)
	}
	if out := ok(t, b.Repo, "peers", "--json"); out != "[]\n" {
		t.Errorf("peers --json with none: %q", out)
	}
	ok(t, b.Repo, "connect", a.Addr())
	out := ok(t, b.Repo, "peers")
	if !strings.Contains(out, short(a.ID)) || strings.Contains(out, a.ID) {
		t.Errorf("peers table without short IDs:\n%s", out)
	}
	fitsTable(t, out)
	if out := ok(t, b.Repo, "peers", "--wide"); !strings.Contains(out, a.ID) {
		t.Errorf("peers --wide:\n%s", out)
	}

	line = fails(t, b.Repo, []string{"--all", "--protocol"}, "tunnel", "close", "--all", "--protocol", "/x/a")
	if strings.Contains(line, "ID, Protocol") || strings.Contains(line, "All ") {
		t.Errorf("tunnel close error names Go fields: %s", line)
	}
	big := bytes.Repeat([]byte("x"), 5<<20) // over the 4 MiB messages.max_message_size
	r := cliIn(t, b.Repo, big, "send", a.ID, "t")
	if r.Code != 1 || !strings.Contains(r.Err, "messages.max_message_size") || !strings.Contains(r.Err, "payload of about") {
		t.Errorf("too-big send: exit %d %q", r.Code, r.Err)
	}
	line = fails(t, b.Repo, []string{`'é'`}, "send", a.ID, "é", "hi")
	if strings.Contains(line, "Ã") {
		t.Errorf("non-ASCII printed as mojibake: %s", line)
	}
	if out := ok(t, b.Repo, "ping", "-n", "1", a.ID); !strings.HasSuffix(out, " over 1 ping\n") {
		t.Errorf("ping -n 1: %q", out)
	}
}

// TestCLIConfigKeepsProfile: a test repo's config trimmed to one line keeps
// the test profile's loopback-only settings.
func TestCLIConfigKeepsProfile(t *testing.T) {
	repo := newRepo(t)
	path := filepath.Join(repo, "config.toml")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "profile = 'test'") {
		t.Fatalf("config.toml does not record the profile:\n%s", text)
	}
	if err := os.WriteFile(path, []byte("profile = 'test'\nnetwork = 'trimmed'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, repo)
	var id struct {
		Addrs []string `json:"addrs"`
	}
	jsonOut(t, d.Repo, &id, "id", "--json")
	for _, a := range id.Addrs {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") {
			t.Errorf("trimmed test config listens on %s, want loopback only", a)
		}
	}
	if strings.Contains(d.Output(), "4101") || strings.Contains(d.Output(), "mdns") && strings.Contains(d.Output(), "mdns=true") {
		t.Errorf("trimmed test config fell back to the default profile:\n%s", d.Output())
	}
}
