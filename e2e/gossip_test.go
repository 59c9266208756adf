package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// topicInfo is the part of `warren topics --json` the tests read.
type topicInfo struct {
	Name          string            `json:"name"`
	Peers         int               `json:"peers"`
	Mesh          int               `json:"mesh"`
	Subscriptions int               `json:"subscriptions"`
	Published     uint64            `json:"published"`
	Received      uint64            `json:"received"`
	Dropped       uint64            `json:"dropped"`
	Rejected      uint64            `json:"rejected"`
	DroppedBy     map[string]uint64 `json:"dropped_by"`
}

// topic returns repo's daemon's entry for the topic name (ok false when it
// has not joined it).
func topic(t *testing.T, repo, name string) (topicInfo, bool) {
	t.Helper()
	var ts []topicInfo
	jsonOut(t, repo, &ts, "topics", "--json")
	for _, ti := range ts {
		if ti.Name == name {
			return ti, true
		}
	}
	return topicInfo{}, false
}

// waitTopicSubscriptions waits until repo's daemon has n subscriptions to name.
func waitTopicSubscriptions(t *testing.T, repo, name string, n int) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if ti, _ := topic(t, repo, name); ti.Subscriptions != n {
			return fmt.Errorf("%d subscriptions to topic %q, want %d", ti.Subscriptions, name, n)
		}
		return nil
	})
}

// lines reads p's stdout lines into a channel, closed at EOF.
func lines(p *proc) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		for {
			l, err := p.Out.ReadString('\n')
			if err != nil {
				return
			}
			ch <- strings.TrimSuffix(l, "\n")
		}
	}()
	return ch
}

// topicMsg is one line of `warren sub --json`.
type topicMsg struct {
	Topic        string    `json:"topic"`
	From         string    `json:"from"`
	ReceivedFrom string    `json:"received_from"`
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Data         []byte    `json:"payload"` // sub --json names it as recv --json does
	Text         *string   `json:"text"`    // the data as a string when it is UTF-8
}

func parseTopicMsg(t *testing.T, line string) topicMsg {
	t.Helper()
	var fields map[string]any
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		t.Fatalf("sub --json line %q: %v", line, err)
	}
	for _, f := range []string{"topic", "from", "received_from", "id", "time", "payload"} {
		if _, found := fields[f]; !found {
			t.Errorf("sub --json line lacks field %q: %s", f, line)
		}
	}
	var m topicMsg
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("sub --json line %q: %v", line, err)
	}
	return m
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestGossipPubSub: `pub` on one daemon reaches `sub` (text and --json) on
// a connected daemon: a data argument, all of stdin, and --lines.
func TestGossipPubSub(t *testing.T) {
	a, b := twoDaemons(t, newRepo(t), newRepo(t))

	text := startCLI(t, a.Repo, nil, "sub", "news", "-n", "4", "--raw")
	js := startCLI(t, a.Repo, nil, "sub", "news", "-n", "4", "--json")
	waitTopicSubscriptions(t, a.Repo, "news", 2)

	start := time.Now()
	if out := ok(t, b.Repo, "pub", "news", "hello world", "--timeout", "20s"); out != "published 1 message to topic \"news\"\n" {
		t.Errorf("pub printed %q", out)
	}
	// Whole stdin is one message, newlines and all.
	if r := cliIn(t, b.Repo, []byte("multi\nline"), "pub", "news"); r.Code != 0 {
		t.Fatalf("pub from stdin: %d %s", r.Code, r.Err)
	}
	if r := cliIn(t, b.Repo, []byte("bulk1\nbulk2\n"), "pub", "--lines", "news"); r.Code != 0 || r.Out != "published 2 messages to topic \"news\"\n" {
		t.Fatalf("pub --lines: %d %q %s", r.Code, r.Out, r.Err)
	}

	var got []string
	for range 5 {
		got = append(got, text.Line())
	}
	// GossipSub checks signatures in parallel, so messages published back
	// to back (bulk1, bulk2) may swap; the lines of one message stay together.
	if strings.Join(got[:3], "|") != "hello world|multi|line" || !sameSet(got[3:], []string{"bulk1", "bulk2"}) {
		t.Errorf("sub printed %q, want hello world, multi, line, then bulk1 and bulk2", got)
	}
	ids := map[string]bool{}
	var data []string
	for i := range 4 {
		m := parseTopicMsg(t, js.Line())
		data = append(data, string(m.Data))
		if m.Text == nil || *m.Text != string(m.Data) {
			t.Errorf("message %d: text %v, want %q (the data is UTF-8)", i, m.Text, m.Data)
		}
		if m.Topic != "news" || m.From != b.ID || m.ReceivedFrom != b.ID {
			t.Errorf("message %d = %+v, want topic news from %s", i, m, b.ID)
		}
		if !strings.HasPrefix(m.ID, b.ID+"/") || ids[m.ID] {
			t.Errorf("message %d: id %q is not <author>/<seqno> or repeats", i, m.ID)
		}
		ids[m.ID] = true
		if m.Time.Before(start.Add(-time.Second)) || time.Since(m.Time) > time.Minute {
			t.Errorf("message %d: time %v is not when it arrived", i, m.Time)
		}
	}
	if !sameSet(data, []string{"hello world", "multi\nline", "bulk1", "bulk2"}) {
		t.Errorf("sub --json data %q", data)
	}
	for _, p := range []*proc{text, js} {
		if code := p.Wait(20 * time.Second); code != 0 {
			t.Fatalf("sub exit %d: %s", code, p.Stderr())
		}
		if r, d := summary(t, p.Stderr()); r != 4 || d != 0 {
			t.Errorf("sub summary: received %d, dropped %d; want 4, 0", r, d)
		}
	}

	// topics: the counters on both sides; the subscriptions ended with sub.
	waitTopicSubscriptions(t, a.Repo, "news", 0)
	if ti, found := topic(t, a.Repo, "news"); !found || ti.Received != 4 || ti.Published != 0 || ti.Peers != 1 || ti.Dropped != 0 {
		t.Errorf("subscriber's topics entry %+v (found %v): want received 4, peers 1, nothing dropped", ti, found)
	}
	if ti, found := topic(t, b.Repo, "news"); !found || ti.Published != 4 || ti.Received != 0 || ti.Peers != 1 {
		t.Errorf("publisher's topics entry %+v (found %v): want published 4, peers 1", ti, found)
	}
	if out := ok(t, b.Repo, "topics"); !strings.Contains(out, "TOPIC") || !strings.Contains(out, "PUBLISHED") || !strings.Contains(out, "news") {
		t.Errorf("topics:\n%s", out)
	}
	a.Stop()
	b.Stop()
}

// TestGossipThroughThirdNode: A and C each connect only to B, which does
// not join the topic. C subscribes, A publishes: they must find each other
// through the DHT (rendezvous on B) and deliver.
func TestGossipThroughThirdNode(t *testing.T) {
	a, b, c := startDaemon(t, newRepo(t)), startDaemon(t, newRepo(t)), startDaemon(t, newRepo(t))
	ok(t, a.Repo, "connect", b.Addr())
	ok(t, c.Repo, "connect", b.Addr())

	sub := startCLI(t, c.Repo, nil, "sub", "relay", "--json", "-n", "1")
	waitTopicSubscriptions(t, c.Repo, "relay", 1)
	// A's DHT may have dialled C while filling its routing table (B told it
	// about C). Drop that connection, so that A has to find C as a member of
	// the topic: through the provider record C advertised on B.
	if strings.Contains(ok(t, a.Repo, "peers", "--wide"), c.ID) {
		t.Logf("A's DHT had connected it to C; disconnecting them")
		ok(t, a.Repo, "disconnect", c.ID)
		eventually(t, 10*time.Second, func() error {
			if strings.Contains(ok(t, a.Repo, "peers", "--wide"), c.ID) {
				return fmt.Errorf("A still connected to C after disconnect")
			}
			return nil
		})
	}
	got := lines(sub)
	start := time.Now()
	var m topicMsg
	for attempt := 1; ; attempt++ {
		r := cli(t, a.Repo, "pub", "relay", fmt.Sprintf("via-dht-%d", attempt), "--timeout", "30s")
		select {
		case l, open := <-got:
			if !open {
				t.Fatalf("sub ended without a message: %s", sub.Stderr())
			}
			m = parseTopicMsg(t, l)
		case <-time.After(5 * time.Second):
			if time.Since(start) > 120*time.Second {
				t.Fatalf("no message reached C within %s; last pub: exit %d %s", time.Since(start), r.Code, r.Err)
			}
			t.Logf("attempt %d: pub exit %d %s; nothing at C yet", attempt, r.Code, strings.TrimSpace(r.Err))
			continue
		}
		break
	}
	t.Logf("first message through rendezvous after %s", time.Since(start).Round(time.Millisecond))
	if m.Topic != "relay" || m.From != a.ID || !strings.HasPrefix(string(m.Data), "via-dht-") {
		t.Errorf("C got %+v, want a via-dht-N message from A %s", m, a.ID)
	}
	if code := sub.Wait(20 * time.Second); code != 0 {
		t.Fatalf("sub exit %d: %s", code, sub.Stderr())
	}
	if !strings.Contains(ok(t, a.Repo, "peers", "--wide"), c.ID) {
		t.Errorf("A is not connected to C after delivering to it")
	}
	if ti, _ := topic(t, b.Repo, "relay"); ti.Name != "" {
		t.Errorf("B joined the topic (%+v); the test wants it only as the DHT node", ti)
	}
	a.Stop()
	b.Stop()
	c.Stop()
}

// TestGossipLimitsAndBadInput: oversize messages, publishing with nobody
// to receive, and bad names and options each fail with one clear line.
func TestGossipLimitsAndBadInput(t *testing.T) {
	repo := newRepo(t)
	editConfig(t, repo, "max_message_size = 1048576", "max_message_size = 100")
	editConfig(t, repo, "publish_timeout = '10s'", "publish_timeout = '300ms'")
	a := startDaemon(t, repo)
	big := strings.Repeat("x", 150)

	fails(t, a.Repo, []string{`"big"`, "150 bytes", "100 bytes", "gossip.max_message_size"}, "pub", "big", big)
	r := cliIn(t, a.Repo, []byte(big), "pub", "big")
	if line := strings.TrimSpace(r.Err); r.Code == 0 || !strings.Contains(line, "150 bytes") || !strings.Contains(line, "gossip.max_message_size") {
		t.Errorf("pub of 150 bytes from stdin: exit %d, stderr %q", r.Code, r.Err)
	}
	// (Line 1: with no peer here, a line that fits would wait and fail first.)
	r = cliIn(t, a.Repo, []byte(big+"\nok\n"), "pub", "--lines", "big")
	if line := strings.TrimSpace(r.Err); r.Code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, "line 1") ||
		!strings.Contains(line, "gossip.max_message_size") {
		t.Errorf("pub --lines with an oversize line 1: exit %d, stderr %q", r.Code, r.Err)
	}

	// Nobody subscribed: a clear error after the wait, never silence.
	t0 := time.Now()
	fails(t, a.Repo, []string{`"lonely"`, "no peer subscribed", "within 2s", "not sent"}, "pub", "lonely", "x", "--timeout", "2s")
	if d := time.Since(t0); d < 2*time.Second || d > 8*time.Second {
		t.Errorf("pub --timeout 2s (gossip.publish_timeout 300ms) failed after %s, want about 2s", d)
	}
	t0 = time.Now()
	fails(t, a.Repo, []string{`"lonely"`, "no peer subscribed", "within 300ms"}, "pub", "lonely", "x")
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("pub without --timeout took %s; gossip.publish_timeout is 300ms", d)
	}
	r = cliIn(t, a.Repo, []byte("one\ntwo\n"), "pub", "--lines", "lonely", "--timeout", "500ms")
	if line := strings.TrimSpace(r.Err); r.Code == 0 || !strings.Contains(line, "line 1") || !strings.Contains(line, "no peer subscribed") ||
		!strings.Contains(line, "0 messages published before it") {
		t.Errorf("pub --lines with no peers: exit %d, stderr %q", r.Code, r.Err)
	}
	if ti, _ := topic(t, a.Repo, "lonely"); ti.Published != 0 {
		t.Errorf("topics counts %d published messages on a topic nobody was in", ti.Published)
	}

	// Names and options.
	long := strings.Repeat("t", 129)
	for _, name := range []string{"bad topic!", "a/b", long, ".dot"} {
		for _, args := range [][]string{{"pub", name, "x"}, {"sub", name}} {
			fails(t, a.Repo, []string{fmt.Sprintf("%q", name), "letters, digits"}, args...)
		}
	}
	fails(t, a.Repo, []string{`buffer "-1"`}, "sub", "t", "--buffer", "-1")
	fails(t, a.Repo, []string{`n "-1"`}, "sub", "t", "-n", "-1")
	fails(t, a.Repo, []string{"--timeout"}, "pub", "t", "x", "--timeout", "-1s")
	fails(t, a.Repo, []string{"--lines", "data argument"}, "pub", "--lines", "t", "x")
	a.Stop()
}
