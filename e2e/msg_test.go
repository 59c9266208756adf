package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a CLI command running in the background; the test reads its
// stdout at its own pace (a pipe: an unread stdout stalls the command).
type proc struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd
	Out  *bufio.Reader
	pr   *os.File
	mu   sync.Mutex
	errb bytes.Buffer
	done chan struct{}
	err  error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startCLI starts `warren --repo repo args...` with stdin (nil: none).
func startCLI(t *testing.T, repo string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, args: args, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--repo", repo}, args...)...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.pr = pr
	p.Out = bufio.NewReaderSize(pr, 4096)
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Stdin = pw, lockedWriter{&p.mu, &p.errb}, stdin
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		pr.Close() // unblocks a command stuck writing stdout
		<-p.done
	})
	return p
}

// Stderr returns what the command printed on stderr so far.
func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// Line reads one stdout line without its newline.
func (p *proc) Line() string {
	p.t.Helper()
	l, err := p.Out.ReadString('\n')
	if err != nil {
		p.t.Fatalf("warren %v: read stdout: %v (read %q)\nstderr: %s", p.args, err, l, p.Stderr())
	}
	return strings.TrimSuffix(l, "\n")
}

// Wait waits for the command to exit (reading nothing more) and returns
// its exit code.
func (p *proc) Wait(timeout time.Duration) int {
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
	if s := p.Stderr(); strings.Contains(s, "panic:") || strings.Contains(s, "DATA RACE") {
		p.t.Fatalf("warren %v panicked or raced:\n%s", p.args, s)
	}
	return 0
}

// Interrupt sends SIGINT, as Ctrl-C does.
func (p *proc) Interrupt() { _ = p.cmd.Process.Signal(syscall.SIGINT) }

// msgStats is the part of `warren msg stats --json` the tests read.
type msgStats struct {
	Types map[string]struct {
		MsgsIn      uint64 `json:"msgs_in"`
		Dropped     uint64 `json:"dropped"`
		Dups        uint64 `json:"duplicates"`
		Subscribers int    `json:"subscribers"`
		Handler     bool   `json:"handler"`
	} `json:"types"`
	Subscriptions []struct {
		Type       string `json:"type"`
		Policy     string `json:"policy"`
		Buffer     int    `json:"buffer"`
		Queued     int    `json:"queued"`
		Delivered  uint64 `json:"delivered"`
		Dropped    uint64 `json:"dropped"`
		Duplicates uint64 `json:"duplicates"`
	} `json:"subscriptions"`
	Peers []struct {
		Peer   string `json:"peer"`
		Queued struct {
			High, Normal, Low int
		} `json:"queued"`
	} `json:"peers"`
}

func stats(t *testing.T, repo string) msgStats {
	t.Helper()
	var st msgStats
	jsonOut(t, repo, &st, "msg", "stats", "--json")
	return st
}

// waitSubscribers waits until repo's daemon has n subscriptions of typ.
func waitSubscribers(t *testing.T, repo, typ string, n int) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if got := stats(t, repo).Types[typ].Subscribers; got != n {
			return fmt.Errorf("%d subscribers of %q, want %d", got, typ, n)
		}
		return nil
	})
}

// waitHandler waits until repo's daemon has a responder for typ.
func waitHandler(t *testing.T, repo, typ string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if !stats(t, repo).Types[typ].Handler {
			return fmt.Errorf("no responder for %q yet", typ)
		}
		return nil
	})
}

// editConfig replaces old with new in repo's config.toml.
func editConfig(t *testing.T, repo, old, new string) {
	t.Helper()
	setConfig(t, repo, old, new)
}

var summaryRE = regexp.MustCompile(`(?m)^received (\d+), dropped (\d+)$`)

// summary parses recv's final stderr line.
func summary(t *testing.T, stderr string) (received, dropped int) {
	t.Helper()
	m := summaryRE.FindAllStringSubmatch(stderr, -1)
	if len(m) != 1 {
		t.Fatalf("recv stderr has no single 'received X, dropped Y' line:\n%s", stderr)
	}
	received, _ = strconv.Atoi(m[0][1])
	dropped, _ = strconv.Atoi(m[0][2])
	return received, dropped
}

// twoDaemons starts a and b, b connected to a.
func twoDaemons(t *testing.T, repoA, repoB string) (a, b *daemon) {
	t.Helper()
	a, b = startDaemon(t, repoA), startDaemon(t, repoB)
	ok(t, b.Repo, "connect", a.Addr())
	return a, b
}

func TestMsgSendRecv(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))

	text := startCLI(t, a.Repo, nil, "recv", "chat", "-n", "4", "--raw")
	js := startCLI(t, a.Repo, nil, "recv", "chat", "-n", "4", "--json")
	waitSubscribers(t, a.Repo, "chat", 2)

	start := time.Now()
	if out := ok(t, b.Repo, "send", a.ID, "chat", "hello world"); out != "sent 1 message to "+a.ID+"\n" {
		t.Errorf("send printed %q", out)
	}
	if r := cliIn(t, b.Repo, []byte("from stdin\n"), "send", a.ID, "chat"); r.Code != 0 {
		t.Fatalf("send from stdin: %d %s", r.Code, r.Err)
	}
	// Whole stdin is one message, newlines and all.
	if r := cliIn(t, b.Repo, []byte("line1\nline2"), "send", a.ID, "chat", "--priority", "high"); r.Code != 0 {
		t.Fatalf("send multi-line stdin: %d %s", r.Code, r.Err)
	}
	if r := cliIn(t, b.Repo, []byte("bulk1\n"), "send", "--lines", a.ID, "chat", "--priority", "low"); r.Code != 0 || r.Out != "sent 1 message to "+a.ID+"\n" {
		t.Fatalf("send --lines: %d %q %s", r.Code, r.Out, r.Err)
	}
	wantPayloads := []string{"hello world", "from stdin\n", "line1\nline2", "bulk1"}

	var lines []string
	for range 5 {
		lines = append(lines, text.Line())
	}
	if want := []string{"hello world", "from stdin", "line1", "line2", "bulk1"}; strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("recv printed %q, want %q", lines, want)
	}
	ids := map[string]bool{}
	for i, want := range wantPayloads {
		var m map[string]any
		line := js.Line()
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("recv --json line %q: %v", line, err)
		}
		var typed struct {
			Type    string    `json:"type"`
			From    string    `json:"from"`
			ID      string    `json:"id"`
			Time    time.Time `json:"time"`
			Payload []byte    `json:"payload"`
			Text    *string   `json:"text"` // the payload as a string when it is UTF-8
		}
		if err := json.Unmarshal([]byte(line), &typed); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"type", "from", "id", "time", "payload"} {
			if _, found := m[f]; !found {
				t.Errorf("message %d lacks field %q: %s", i, f, line)
			}
		}
		if typed.Type != "chat" || typed.From != b.ID || string(typed.Payload) != want {
			t.Errorf("message %d = %+v, want type chat from %s payload %q", i, typed, b.ID, want)
		}
		if typed.Text == nil || *typed.Text != want {
			t.Errorf("message %d: text %v, want %q (the payload is UTF-8)", i, typed.Text, want)
		}
		if len(typed.ID) != 32 || ids[typed.ID] {
			t.Errorf("message %d: id %q is not 32 hex digits or repeats", i, typed.ID)
		}
		ids[typed.ID] = true
		if typed.Time.Before(start.Add(-time.Second)) || time.Since(typed.Time) > time.Minute {
			t.Errorf("message %d: time %v is not when it arrived", i, typed.Time)
		}
	}
	for _, p := range []*proc{text, js} {
		if code := p.Wait(20 * time.Second); code != 0 {
			t.Fatalf("recv exit %d: %s", code, p.Stderr())
		}
		if r, d := summary(t, p.Stderr()); r != 4 || d != 0 {
			t.Errorf("recv summary: received %d, dropped %d; want 4, 0", r, d)
		}
	}

	// De-duplication by message id: a retried send (same --id) is delivered once.
	dd := startCLI(t, a.Repo, nil, "recv", "dd", "--dedup", "-n", "2", "--raw")
	waitSubscribers(t, a.Repo, "dd", 1)
	const id = "00112233445566778899aabbccddeeff"
	ok(t, b.Repo, "send", a.ID, "dd", "first", "--id", id)
	ok(t, b.Repo, "send", a.ID, "dd", "retry", "--id", id)
	ok(t, b.Repo, "send", a.ID, "dd", "second")
	if got := dd.Line() + "," + dd.Line(); got != "first,second" {
		t.Errorf("dedup recv got %q, want first,second", got)
	}
	dd.Wait(20 * time.Second)
	if st := stats(t, a.Repo).Types["dd"]; st.Dups != 1 || st.MsgsIn != 3 {
		t.Errorf("dd stats %+v: want 3 in, 1 duplicate", st)
	}
	// The plain stats table names the types.
	if out := ok(t, a.Repo, "msg", "stats"); !strings.Contains(out, "TYPE") || !strings.Contains(out, "chat") || !strings.Contains(out, "SUBSCRIPTION") {
		t.Errorf("msg stats:\n%s", out)
	}
	a.Stop()
	b.Stop()

}

// TestMsgBlockLosslessAndDropNewestCounts: two subscribers of one type on
// the receiving daemon. The block one is read slowly at first; it must get
// all 100,000 messages in order (the sender is slowed down instead). The
// drop-newest one (buffer 100) is not read at all until the end; it must
// report exactly what it lost: received + dropped == 100,000.
func TestMsgBlockLosslessAndDropNewestCounts(t *testing.T) {
	const total = 100_000
	a, b := twoDaemons(t, newRepo(t), newRepo(t))
	blk := startCLI(t, a.Repo, nil, "recv", "bulk", "--policy", "block", "--raw")
	drp := startCLI(t, a.Repo, nil, "recv", "bulk", "--policy", "drop-newest", "--buffer", "100", "--raw")
	waitSubscribers(t, a.Repo, "bulk", 2)

	// ~100-byte lines, so that pipes and socket buffers hold few of them.
	pad := strings.Repeat("p", 92)
	var in bytes.Buffer
	for i := range total {
		fmt.Fprintf(&in, "%06d-%s\n", i, pad)
	}
	start := time.Now()
	snd := startCLI(t, b.Repo, bytes.NewReader(in.Bytes()), "send", "--lines", a.ID, "bulk")

	// The block subscriber: slow for 1.5 s (about 2,000 lines a second),
	// then full speed. Every line must come, in order.
	blkDone := make(chan error, 1)
	go func() {
		for i := range total {
			l, err := blk.Out.ReadString('\n')
			if err != nil {
				blkDone <- fmt.Errorf("block subscriber: line %d: %v", i, err)
				return
			}
			if want := fmt.Sprintf("%06d-%s\n", i, pad); l != want {
				blkDone <- fmt.Errorf("block subscriber: line %d is %.20q, want %.20q", i, l, want)
				return
			}
			if i%20 == 0 && time.Since(start) < 1500*time.Millisecond {
				time.Sleep(10 * time.Millisecond)
			}
		}
		blkDone <- nil
	}()
	var sndCode int
	select {
	case <-time.After(1200 * time.Millisecond):
	case <-snd.done:
		// Under backpressure the sender cannot finish while the block
		// subscriber still reads slowly.
		t.Errorf("sender finished %s after start, while the block subscriber was still slow", time.Since(start))
	}
	if sndCode = snd.Wait(120 * time.Second); sndCode != 0 {
		t.Fatalf("send --lines exit %d: %s", sndCode, snd.Stderr())
	}
	if out := snd.Line(); out != fmt.Sprintf("sent %d messages to %s", total, a.ID) {
		t.Errorf("send --lines printed %q", out)
	}
	select {
	case err := <-blkDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("block subscriber did not get every message")
	}
	t.Logf("100,000 messages through the slow block subscriber in %s", time.Since(start).Round(time.Millisecond))

	// Now drain the drop-newest subscriber.
	var drpLines []string
	var drpMu sync.Mutex
	drpDone := make(chan struct{})
	go func() {
		defer close(drpDone)
		for {
			l, err := drp.Out.ReadString('\n')
			if err != nil {
				return
			}
			drpMu.Lock()
			drpLines = append(drpLines, l)
			drpMu.Unlock()
		}
	}()
	var delivered, dropped uint64
	eventually(t, 30*time.Second, func() error {
		for _, s := range stats(t, a.Repo).Subscriptions {
			if s.Policy == "drop-newest" {
				delivered, dropped = s.Delivered, s.Dropped
				drpMu.Lock()
				n := len(drpLines)
				drpMu.Unlock()
				if s.Queued != 0 || s.Delivered+s.Dropped != total || uint64(n) != s.Delivered {
					return fmt.Errorf("drop-newest subscription %+v, %d lines printed", s, n)
				}
				return nil
			}
		}
		return fmt.Errorf("no drop-newest subscription")
	})
	drp.Interrupt()
	if code := drp.Wait(20 * time.Second); code != 0 {
		t.Fatalf("drop-newest recv exit %d after SIGINT: %s", code, drp.Stderr())
	}
	<-drpDone
	got, lost := summary(t, drp.Stderr())
	if got+lost != total || uint64(got) != delivered || uint64(lost) != dropped || lost == 0 || got != len(drpLines) {
		t.Errorf("drop-newest: summary received %d + dropped %d (want sum %d, dropped > 0); daemon: delivered %d dropped %d; %d lines printed",
			got, lost, total, delivered, dropped, len(drpLines))
	}
	if !strings.Contains(drp.Stderr(), "messages dropped so far") {
		t.Errorf("drop-newest recv did not report drops while running:\n%s", drp.Stderr())
	}
	prev := -1
	for _, l := range drpLines { // each message at most once, in order
		n, err := strconv.Atoi(l[:6])
		if err != nil || n <= prev {
			t.Fatalf("drop-newest line %.20q after %d", l, prev)
		}
		prev = n
	}
	if st := stats(t, a.Repo).Types["bulk"]; st.Dropped != uint64(lost) || st.MsgsIn != total {
		t.Errorf("type stats %+v: want %d in, %d dropped", st, total, lost)
	}
	blk.Interrupt()
	if code := blk.Wait(20 * time.Second); code != 0 {
		t.Fatalf("block recv exit %d: %s", code, blk.Stderr())
	}
	if r, d := summary(t, blk.Stderr()); r != total || d != 0 {
		t.Errorf("block recv summary: received %d, dropped %d", r, d)
	}
	a.Stop()
	b.Stop()
}

// TestMsgPriorities stalls the receiver so that low-priority messages pile
// up in the sender's queue, then sends one high-priority message: it must
// arrive before every low message that was still queued.
func TestMsgPriorities(t *testing.T) {
	const lows = 10_000
	repoB := newRepo(t)
	editConfig(t, repoB, "send_queue = 4096", "send_queue = 256")
	a, b := twoDaemons(t, newRepo(t), repoB)

	rcv := startCLI(t, a.Repo, nil, "recv", "prio", "--buffer", "1", "-n", strconv.Itoa(lows+1), "--raw")
	waitSubscribers(t, a.Repo, "prio", 1)
	pad := strings.Repeat("l", 1000)
	var in bytes.Buffer
	for i := range lows {
		fmt.Fprintf(&in, "low-%05d-%s\n", i, pad)
	}
	snd := startCLI(t, b.Repo, bytes.NewReader(in.Bytes()), "send", "--lines", "--priority", "low", a.ID, "prio")

	// Nobody reads rcv's stdout: the pipeline stalls and the low queue fills.
	eventually(t, 60*time.Second, func() error {
		for _, p := range stats(t, b.Repo).Peers {
			if p.Peer == a.ID && p.Queued.Low == 256 {
				return nil
			}
		}
		return fmt.Errorf("low send queue to %s not full yet: %+v", a.ID, stats(t, b.Repo).Peers)
	})
	ok(t, b.Repo, "send", "--priority", "high", a.ID, "prio", "HIGH")
	queued := -1
	for _, p := range stats(t, b.Repo).Peers {
		if p.Peer == a.ID {
			queued = p.Queued.Low
		}
	}
	if queued < 200 {
		t.Fatalf("only %d low messages queued behind the high one; the receiver is not stalled", queued)
	}

	high := -1
	for i := range lows + 1 {
		l := rcv.Line()
		if l == "HIGH" {
			high = i
			continue
		}
		off := 0
		if high >= 0 {
			off = 1
		}
		if want := fmt.Sprintf("low-%05d-", i-off); !strings.HasPrefix(l, want) {
			t.Fatalf("line %d is %.20q, want %s...", i, l, want)
		}
	}
	if code := rcv.Wait(20 * time.Second); code != 0 {
		t.Fatalf("recv exit %d: %s", code, rcv.Stderr())
	}
	if code := snd.Wait(20 * time.Second); code != 0 {
		t.Fatalf("send --lines exit %d: %s", code, snd.Stderr())
	}
	if high < 0 {
		t.Fatal("the high-priority message never arrived")
	}
	lowsAfter := lows - high
	t.Logf("high arrived as message %d of %d; %d low messages were queued when it was sent, %d arrived after it", high+1, lows+1, queued, lowsAfter)
	if lowsAfter < queued {
		t.Errorf("only %d low messages arrived after the high one, but %d were queued before it was sent", lowsAfter, queued)
	}
	a.Stop()
	b.Stop()
}

func TestMsgRequestRespond(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))

	up := startCLI(t, a.Repo, nil, "respond", "up", "--exec", `printf '%s:' "$WARREN_FROM"; tr a-z A-Z`)
	waitHandler(t, a.Repo, "up")
	if out := ok(t, b.Repo, "request", a.ID, "up", "hello"); out != b.ID+":HELLO\n" {
		t.Errorf("request printed %q, want %q", out, b.ID+":HELLO\n")
	}
	if r := cliIn(t, b.Repo, []byte("from stdin"), "request", a.ID, "up"); r.Code != 0 || r.Out != b.ID+":FROM STDIN\n" {
		t.Errorf("request from stdin: %d %q %s", r.Code, r.Out, r.Err)
	}
	// One responder per type.
	fails(t, a.Repo, []string{`"up"`, "another responder"}, "respond", "up", "--echo")
	up.Interrupt()
	if code := up.Wait(20 * time.Second); code != 0 || !strings.Contains(up.Stderr(), "answered 2 requests") {
		t.Errorf("respond exit %d: %s", code, up.Stderr())
	}
	// The registration ended with the stream: the type is free again.
	eventually(t, 10*time.Second, func() error {
		if stats(t, a.Repo).Types["up"].Handler {
			return fmt.Errorf("responder still registered after respond exited")
		}
		return nil
	})
	echo := startCLI(t, a.Repo, nil, "respond", "up", "--echo", "-n", "1")
	waitHandler(t, a.Repo, "up")
	var rep struct {
		From    string `json:"from"`
		Payload []byte `json:"payload"`
	}
	jsonOut(t, b.Repo, &rep, "request", a.ID, "up", "ping", "--json")
	if rep.From != a.ID || string(rep.Payload) != "ping" {
		t.Errorf("echo reply %+v", rep)
	}
	if code := echo.Wait(20 * time.Second); code != 0 {
		t.Errorf("respond -n 1 exit %d: %s", code, echo.Stderr())
	}

	// A responder too slow for the requester's timeout.
	startCLI(t, a.Repo, nil, "respond", "slow", "--exec", "sleep 5")
	waitHandler(t, a.Repo, "slow")
	t0 := time.Now()
	fails(t, b.Repo, []string{`"slow"`, "timed out"}, "request", a.ID, "slow", "x", "--timeout", "1s")
	if d := time.Since(t0); d > 4*time.Second {
		t.Errorf("request --timeout 1s took %s", d)
	}
	// A failing command is an error reply carrying its stderr.
	startCLI(t, a.Repo, nil, "respond", "bad", "--exec", "echo oops >&2; exit 3")
	waitHandler(t, a.Repo, "bad")
	fails(t, b.Repo, []string{`"bad"`, "exit status 3", "oops"}, "request", a.ID, "bad", "x")
	// No responder at all.
	fails(t, b.Repo, []string{`no handler for type "nobody"`}, "request", a.ID, "nobody", "x")
	a.Stop()
	b.Stop()
}

func TestMsgLimitsAndBadInput(t *testing.T) {
	repoA, repoB := newRepo(t), newRepo(t)
	for _, r := range []string{repoA, repoB} {
		editConfig(t, r, "max_message_size = 4194304", "max_message_size = 100")
	}
	a, b := twoDaemons(t, repoA, repoB)
	big := strings.Repeat("x", 150)

	fails(t, b.Repo, []string{"150 bytes", "100 bytes", "max_message_size"}, "send", a.ID, "t", big)
	r := cliIn(t, b.Repo, []byte("ok1\nok2\n"+big+"\nok4\n"), "send", "--lines", a.ID, "t")
	if line := strings.TrimSpace(r.Err); r.Code == 0 || strings.Contains(line, "\n") ||
		!strings.Contains(line, "line 3") || !strings.Contains(line, "max_message_size") || !strings.Contains(line, "2 messages sent before it") {
		t.Errorf("send --lines with an oversize line 3: exit %d, stderr %q", r.Code, r.Err)
	}
	// A long bulk send failing late still reports the failing line.
	var in bytes.Buffer
	for i := range 50_000 {
		fmt.Fprintf(&in, "%d\n", i)
	}
	in.WriteString(big + "\n")
	for i := range 50_000 {
		fmt.Fprintf(&in, "%d\n", i)
	}
	r = cliIn(t, b.Repo, in.Bytes(), "send", "--lines", a.ID, "t")
	if r.Code == 0 || !strings.Contains(r.Err, "line 50001") || !strings.Contains(r.Err, "50000 messages sent before it") {
		t.Errorf("bulk send failing at line 50001: exit %d, stderr %q", r.Code, r.Err)
	}
	fails(t, b.Repo, []string{"150 bytes", "max_message_size"}, "request", a.ID, "t", big)

	// Peers: malformed, self, unknown, unreachable.
	fails(t, b.Repo, []string{`"banana"`, "peer ID"}, "send", "banana", "t", "x")
	fails(t, b.Repo, []string{`"banana"`, "peer ID"}, "request", "banana", "t", "x")
	fails(t, b.Repo, []string{b.ID, "own peer ID"}, "send", b.ID, "t", "x")
	unknown := "12D3KooWSxfBMX17sVysw1ZQ5T3shV8vWmhSF5bPVH9evaxe3YLH"
	fails(t, b.Repo, []string{unknown, "not found"}, "send", unknown, "t", "x")
	fails(t, b.Repo, []string{unknown}, "request", unknown, "t", "x")
	c := startDaemon(t, newRepo(t))
	ok(t, b.Repo, "connect", c.Addr())
	c.Kill()
	eventually(t, 10*time.Second, func() error {
		if strings.Contains(ok(t, b.Repo, "peers", "--wide"), c.ID) {
			return fmt.Errorf("still connected to the killed daemon")
		}
		return nil
	})
	fails(t, b.Repo, []string{c.ID}, "send", c.ID, "t", "x")

	// Types and options.
	for _, args := range [][]string{
		{"send", a.ID, "bad type!", "x"},
		{"request", a.ID, "bad type!", "x"},
		{"recv", "bad type!"},
		{"respond", "bad type!", "--echo"},
	} {
		fails(t, b.Repo, []string{`"bad type!"`, "A-Za-z0-9._/-"}, args...)
	}
	fails(t, b.Repo, []string{"priority", `"urgent"`}, "send", a.ID, "t", "x", "--priority", "urgent")
	fails(t, b.Repo, []string{"policy", `"sometimes"`}, "recv", "t", "--policy", "sometimes")
	fails(t, b.Repo, []string{`buffer "-1"`}, "recv", "t", "--buffer", "-1")
	fails(t, b.Repo, []string{`n "-1"`}, "recv", "t", "-n", "-1")
	fails(t, b.Repo, []string{"--exec", "--echo"}, "respond", "t")
	fails(t, b.Repo, []string{"--lines", "data argument"}, "send", "--lines", a.ID, "t", "x")
	fails(t, b.Repo, []string{`message id "xyz"`, "32 hex"}, "send", a.ID, "t", "x", "--id", "xyz")
	a.Stop()
	b.Stop()
}
