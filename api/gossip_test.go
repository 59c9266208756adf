package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/gossip"

	"github.com/warren-p2p/warren/internal/testutil"
)

func joinedTopic(n interface{ Topics() []gossip.TopicInfo }, name string) gossip.TopicInfo {
	for _, ti := range n.Topics() {
		if ti.Name == name {
			return ti
		}
	}
	return gossip.TopicInfo{}
}

// TestTopicSubscribeDropsAndClientLeaving: a subscriber that does not read
// loses messages, and every one is accounted for in the stream; when the
// client goes away the handler ends and the subscription is closed.
func TestTopicSubscribeDropsAndClientLeaving(t *testing.T) {
	p := newMsgPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := p.cl.SubscribeTopic(ctx, "news", client.TopicSubscribeOptions{Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	if st.Info.Topic != "news" || st.Info.Buffer != 10 {
		t.Fatalf("subscription info %+v", st.Info)
	}
	if ti := joinedTopic(p.a.Gossip(), "news"); ti.Subscriptions != 1 {
		t.Fatalf("topic %+v: the subscription is not open once SubscribeTopic returned", ti)
	}
	// Not reading: the HTTP stream and the subscription's 10 slots fill up
	// and the rest of 2,000 1 KB messages is dropped.
	const total = 2000
	for i := range total {
		if err := p.b.Gossip().Publish(ctx, "news", fmt.Appendf(nil, "%04d %s", i, strings.Repeat("x", 1000))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, "every message received by a", func() bool {
		return joinedTopic(p.a.Gossip(), "news").Received == total
	})
	// Drops before the subscription's buffer (pubsub's channel to it) are
	// counted on the topic only, just after the message is counted
	// received: read them anew each time.
	before := func() uint64 { return joinedTopic(p.a.Gossip(), "news").DroppedBy[gossip.DropSubscriberSlow] }
	// GossipSub checks signatures in parallel, so order is not kept; each
	// message must come at most once.
	seen := map[string]bool{}
	for st.Received()+st.Dropped()+before() < total {
		ev, err := st.Next()
		if err != nil {
			t.Fatalf("after %d received, %d dropped: %v", st.Received(), st.Dropped(), err)
		}
		if m := ev.TopicMessage; m != nil {
			n := string(m.Data[:4])
			if seen[n] || m.From != p.b.ID().String() || m.Topic != "news" || !strings.HasPrefix(m.ID, m.From+"/") {
				t.Fatalf("message %.40q from %s id %s: repeated or not from b", m.Data, m.From, m.ID)
			}
			seen[n] = true
		}
	}
	ti := joinedTopic(p.a.Gossip(), "news")
	if st.Dropped() == 0 || st.Dropped() != ti.DroppedBy[gossip.DropSubscriptionFull] || st.Received()+ti.Dropped != total {
		t.Fatalf("stream: received %d, dropped %d; topic %+v; want drops, all reported, summing to %d", st.Received(), st.Dropped(), ti, total)
	}

	// The client goes away: the handler ends and unsubscribes.
	cancel()
	testutil.Eventually(t, 10*time.Second, "subscription closed after the client left", func() bool {
		return joinedTopic(p.a.Gossip(), "news").Subscriptions == 0 && !handlersRunning("gossipAPI")
	})
}

func TestTopicSubscribeCountAndServerClose(t *testing.T) {
	p := newMsgPair(t)
	ctx := context.Background()
	st, err := p.cl.SubscribeTopic(ctx, "few", client.TopicSubscribeOptions{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, s := range []string{"one", "two", "three"} {
		if err := p.b.Gossip().Publish(ctx, "few", []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.TopicMessage != nil {
			got = append(got, string(ev.Data))
		}
	}
	if len(got) != 2 || got[0] == got[1] || !strings.Contains("one,two,three", got[0]) || !strings.Contains("one,two,three", got[1]) {
		t.Fatalf("n=2 stream gave %q, want 2 of one, two, three", got)
	}
	testutil.Eventually(t, 10*time.Second, "subscription closed after n messages", func() bool {
		return joinedTopic(p.a.Gossip(), "few").Subscriptions == 0
	})

	// A stream with nothing to say ends when the server closes.
	idle, err := p.cl.SubscribeTopic(ctx, "idle", client.TopicSubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	errc := make(chan error, 1)
	go func() { _, err := idle.Next(); errc <- err }()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.srv.Close(cctx); err != nil {
		t.Fatalf("server close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), `"idle"`) {
			t.Fatalf("stream after server close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5s after the server closed")
	}
	testutil.Eventually(t, 10*time.Second, "handler gone after server close", func() bool {
		return !handlersRunning("gossipAPI") && joinedTopic(p.a.Gossip(), "idle").Subscriptions == 0
	})
}

// TestTopicPublishAPI: publish and bulk publish reach a subscriber on the
// other node, and bad requests are refused with a status and a clear text.
func TestTopicPublishAPI(t *testing.T) {
	p := newMsgPair(t, func(c *config.Config) { c.Gossip.MaxMessageSize = 100 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := p.b.Gossip().Subscribe("pub", gossip.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := p.cl.Publish(ctx, client.PublishRequest{Topic: "pub", Data: []byte("single"), TimeoutMS: 20_000}); err != nil {
		t.Fatal(err)
	}
	res, err := p.cl.PublishMessages(ctx, client.BulkPublishParams{Topic: "pub"}, strings.NewReader("l1\nl2\r\n\nl4"))
	if err != nil || res.Published != 4 {
		t.Fatalf("bulk lines: %+v %v", res, err)
	}
	res, err = p.cl.PublishMessages(ctx, client.BulkPublishParams{Topic: "pub", NDJSON: true}, strings.NewReader(`{"data":"bmQx"}`+"\n\n"+`{"data":"bmQy"}`+"\n"))
	if err != nil || res.Published != 2 {
		t.Fatalf("bulk ndjson: %+v %v", res, err)
	}
	var got []string
	for range 7 {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%q", m.Data))
	}
	slices.Sort(got) // GossipSub does not keep order
	if want := `"","l1","l2\r","l4","nd1","nd2","single"`; strings.Join(got, ",") != want {
		t.Fatalf("b got %s, want %s", strings.Join(got, ","), want)
	}
	if ti := joinedTopic(p.a.Gossip(), "pub"); ti.Published != 7 {
		t.Errorf("publisher topic %+v: want 7 published", ti)
	}

	// Errors, as any client sees them.
	big := strings.Repeat("x", 150)
	for _, c := range []struct {
		method, path, ct, body string
		code                   int
		want                   []string
	}{
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"bad topic","data":""}`, 400, []string{`"bad topic"`, "letters, digits"}},
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"t","data":"` + b64(big) + `"}`, 400, []string{"150 bytes", "100 bytes", "gossip.max_message_size"}},
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"t","payload":""}`, 400, []string{"payload", "docs/api-gossip.md"}},
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"t","timeout_ms":-5}`, 400, []string{"timeout_ms -5"}},
		// Too large: 2^63-1 ms would wrap the duration to a negative one.
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"t","data":"eA==","timeout_ms":9223372036854775807}`, 400,
			[]string{"timeout_ms 9223372036854775807", "1 to 3600000 milliseconds"}},
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"pub","data":"eA==","timeout_ms":3600001}`, 400, []string{"timeout_ms 3600001", "1 to 3600000 milliseconds"}},
		{"POST", "/v1/topics/publish/bulk?topic=t&timeout_ms=9223372036854775807", "text/plain", "x\n", 400,
			[]string{"timeout_ms 9223372036854775807", "1 to 3600000 milliseconds"}},
		{"POST", "/v1/topics/publish", "application/json", `{"topic":"nobody","data":"eA==","timeout_ms":300}`, 504, []string{`"nobody"`, "no peer subscribed", "300ms"}},
		{"POST", "/v1/topics/publish/bulk?topic=t&colour=red", "text/plain", "x\n", 400, []string{`"colour"`}},
		{"POST", "/v1/topics/publish/bulk?topic=t", "image/png", "x\n", 415, []string{"text/plain"}},
		{"POST", "/v1/topics/publish/bulk?topic=pub", "text/plain", "ok\n" + big + "\n", 413, []string{"line 2", "gossip.max_message_size", "1 messages published before it"}},
		{"POST", "/v1/topics/publish/bulk?topic=pub", "application/x-ndjson", "{\"data\":\"eA==\"}\n{nope}\n", 400, []string{"line 2", "JSON object"}},
		{"GET", "/v1/topics/subscribe?topic=t&buffer=-1", "", "", 400, []string{`buffer "-1"`}},
		{"GET", "/v1/topics/subscribe?topic=t&n=x", "", "", 400, []string{`n "x"`}},
		{"GET", "/v1/topics/subscribe?topic=a/b", "", "", 400, []string{`"a/b"`}},
	} {
		req, _ := http.NewRequestWithContext(ctx, c.method, p.hc.URL+c.path, strings.NewReader(c.body))
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error     string `json:"error"`
			Published *int64 `json:"published"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if derr != nil || resp.StatusCode != c.code || strings.Contains(e.Error, "\n") {
			t.Errorf("%s %s: %d %q (%v), want %d", c.method, c.path, resp.StatusCode, e.Error, derr, c.code)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(e.Error, w) {
				t.Errorf("%s %s: error %q does not mention %q", c.method, c.path, e.Error, w)
			}
		}
		if strings.HasPrefix(c.path, "/v1/topics/publish/bulk?topic=pub") && (e.Published == nil || *e.Published != 1) {
			t.Errorf("%s %s: published %v, want 1", c.method, c.path, e.Published)
		}
	}
	ts, err := p.cl.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ti := range ts {
		names = append(names, ti.Name)
	}
	// "nobody": a publish that found no peer leaves the topic it joined.
	if strings.Join(names, ",") != "pub" {
		t.Errorf("topics %q, want pub (refused requests join nothing; a failed publish into an unused topic leaves it)", names)
	}

	// Leaving: refused while a subscription is open, then done, then a no-op.
	asub, err := p.a.Gossip().Subscribe("pub", gossip.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.cl.LeaveTopic(ctx, "pub")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != client.CodeConflict || !strings.Contains(ce.Message, "1 subscription still open") {
		t.Fatalf("leave with an open subscription: %v", err)
	}
	asub.Close()
	if res, err := p.cl.LeaveTopic(ctx, "pub"); err != nil || !res.Left {
		t.Fatalf("leave: %+v %v", res, err)
	}
	if ti := joinedTopic(p.a.Gossip(), "pub"); ti.Name != "" {
		t.Fatalf("still joined after leave: %+v", ti)
	}
	if res, err := p.cl.LeaveTopic(ctx, "pub"); err != nil || res.Left {
		t.Fatalf("leave again: %+v %v", res, err)
	}
	if _, err := p.cl.LeaveTopic(ctx, "bad topic"); !errors.As(err, &ce) || ce.Code != client.CodeInvalidArgument {
		t.Fatalf("leave a bad name: %v", err)
	}
}

func b64(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}
