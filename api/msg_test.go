package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/msg"

	"github.com/warren-p2p/warren/internal/testutil"
)

func newMsgTestNode(t *testing.T, mutate ...func(*config.Config)) *warren.Node {
	t.Helper()
	cfg, _ := config.ForProfile(config.ProfileTest)
	cfg.Addresses.Listen = cfg.Addresses.Listen[:1]
	for _, m := range mutate {
		m(&cfg)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := warren.New(context.Background(), warren.Options{Config: cfg, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// msgPair is node a serving its API on a unix socket, and node b connected to a.
type msgPair struct {
	a, b *warren.Node
	srv  *Server
	cl   *client.Client
	hc   *httptest.Server // a's API over plain HTTP, for raw requests
}

func newMsgPair(t *testing.T, mutate ...func(*config.Config)) *msgPair {
	t.Helper()
	p := &msgPair{a: newMsgTestNode(t, mutate...), b: newMsgTestNode(t, mutate...)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.b.Connect(ctx, p.a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	p.srv = NewServer(p.a, ServerOptions{})
	checkContract(t, p.srv)
	dir, err := os.MkdirTemp("", "wapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	if err := p.srv.ServeUnix(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.srv.Close(context.Background()) })
	if p.cl, err = client.New(client.Endpoint{Unix: sock}, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cl.Close() })
	p.hc = httptest.NewServer(p.srv.Handler())
	t.Cleanup(p.hc.Close)
	return p
}

func TestMsgSubscribeStreamEndsWithClient(t *testing.T) {
	p := newMsgPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := p.cl.SubscribeMessages(ctx, "chat", client.SubscribeOptions{Policy: "drop-newest", Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	if st.Info.Policy != "drop-newest" || st.Info.Buffer != 10 {
		t.Fatalf("subscription info %+v", st.Info)
	}
	// Not reading: the HTTP stream and the subscription's 10 slots fill up
	// and the rest of 2,000 1 KB messages is dropped. Every message is either
	// received or reported dropped.
	const total = 2000
	for i := range total {
		if err := p.b.Msg().Send(ctx, p.a.ID(), "chat", fmt.Appendf(nil, "%d %s", i, strings.Repeat("x", 1000)), msg.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "every message dispatched", func() bool {
		return p.a.Msg().Stats().Types["chat"].MsgsIn == total
	})
	var lastSeen = -1
	for st.Received()+st.Dropped() < total {
		ev, err := st.Next()
		if err != nil {
			t.Fatalf("after %d received, %d dropped: %v", st.Received(), st.Dropped(), err)
		}
		if ev.ReceivedMessage != nil {
			var n int
			fmt.Sscan(string(ev.Payload), &n)
			if n <= lastSeen || ev.From != p.b.ID().String() || ev.Type != "chat" || len(ev.ID) != 32 {
				t.Fatalf("message %+v after %d", ev.ReceivedMessage, lastSeen)
			}
			lastSeen = n
		}
	}
	if st.Dropped() == 0 || st.Received()+st.Dropped() != total {
		t.Fatalf("received %d + dropped %d, want %d with drops", st.Received(), st.Dropped(), total)
	}
	if s := p.a.Msg().Stats().Subscriptions; len(s) != 1 || s[0].Dropped != st.Dropped() {
		t.Fatalf("daemon subscription stats %+v, stream says dropped %d", s, st.Dropped())
	}

	// The client goes away: the handler ends and unsubscribes.
	cancel()
	testutil.Eventually(t, 10*time.Second, "subscription closed after the client left", func() bool {
		return len(p.a.Msg().Stats().Subscriptions) == 0 && !handlersRunning("msgAPI")
	})
}

func TestMsgSubscribeCount(t *testing.T) {
	p := newMsgPair(t)
	ctx := context.Background()
	st, err := p.cl.SubscribeMessages(ctx, "few", client.SubscribeOptions{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, s := range []string{"one", "two", "three"} {
		if err := p.b.Msg().Send(ctx, p.a.ID(), "few", []byte(s), msg.SendOptions{}); err != nil {
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
		if ev.ReceivedMessage != nil {
			got = append(got, string(ev.Payload))
		}
	}
	if strings.Join(got, ",") != "one,two" {
		t.Fatalf("n=2 stream gave %q", got)
	}
	testutil.Eventually(t, 10*time.Second, "subscription closed after n messages", func() bool {
		return len(p.a.Msg().Stats().Subscriptions) == 0
	})
}

// When the stream ends after n messages, the messages the subscription still
// holds (queued, or waiting for room) are discarded, and a last record
// reports them: the client's count of drops is the daemon's.
func TestMsgSubscribeCountReportsDropsAtClose(t *testing.T) {
	p := newMsgPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := p.cl.SubscribeMessages(ctx, "last", client.SubscribeOptions{Count: 2, Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// 1 MiB messages: the daemon's write of one stalls until the client
	// reads it, so the next ones pile up in the subscription.
	payload := bytes.Repeat([]byte("x"), 1<<20)
	for range 4 {
		if err := p.b.Msg().Send(ctx, p.a.ID(), "last", payload, msg.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// held waits until the daemon has dispatched in messages and holds one
	// queued (the one after it waits for room).
	held := func(in uint64) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%d messages in, one queued", in), func() bool {
			s := p.a.Msg().Stats()
			return s.Types["last"].MsgsIn == in && len(s.Subscriptions) == 1 && s.Subscriptions[0].Queued == 1
		})
	}
	held(3) // 1 being written, 2 queued, 3 waiting
	if ev, err := st.Next(); err != nil || ev.ReceivedMessage == nil {
		t.Fatalf("first record: %+v, %v", ev, err)
	}
	held(4) // 2 being written, 3 queued, 4 waiting
	// The 4th is counted in by the reader just before it waits for room.
	time.Sleep(50 * time.Millisecond)
	for {
		_, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", st.Received(), err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "subscription closed", func() bool { return len(p.a.Msg().Stats().Subscriptions) == 0 })
	daemon := p.a.Msg().Stats().Types["last"].Dropped
	if st.Received() != 2 || st.Dropped() != 2 || daemon != 2 {
		t.Fatalf("stream: received %d, dropped %d; daemon: dropped %d; want 2 received, 2 dropped on both sides", st.Received(), st.Dropped(), daemon)
	}
}

// TestMsgServerCloseEndsBlockedStream: a Block subscriber that stops reading
// stalls the handler in a write; Server.Close must still end it at once.
func TestMsgServerCloseEndsBlockedStream(t *testing.T) {
	p := newMsgPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := p.cl.SubscribeMessages(ctx, "big", client.SubscribeOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sendDone := make(chan error, 1)
	go func() {
		payload := bytes.Repeat([]byte("x"), 1000)
		for range 20_000 {
			if err := p.b.Msg().Send(ctx, p.a.ID(), "big", payload, msg.SendOptions{}); err != nil {
				sendDone <- err
				return
			}
		}
		sendDone <- nil
	}()
	// Backpressure reaches the sender: its queue to a fills up.
	testutil.Eventually(t, 30*time.Second, "sender's queue full", func() bool {
		for _, ps := range p.b.Msg().Stats().Peers {
			if ps.Peer == p.a.ID() && ps.Queued.Normal > 0 {
				s := p.a.Msg().Stats().Subscriptions
				return len(s) == 1 && s[0].Queued == 1
			}
		}
		return false
	})
	start := time.Now()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := p.srv.Close(cctx); err != nil {
		t.Fatalf("server close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Server.Close took %s with a stalled subscriber", d)
	}
	testutil.Eventually(t, 5*time.Second, "stream handler ended", func() bool {
		return len(p.a.Msg().Stats().Subscriptions) == 0 && !handlersRunning("msgAPI")
	})
	cancel()
	<-sendDone
}

func TestMsgHandleStream(t *testing.T) {
	p := newMsgPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := p.cl.HandleRequests(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	// A second responder for the type is refused.
	var se *client.Error
	if _, err := p.cl.HandleRequests(ctx, "echo"); !errors.As(err, &se) || se.Status != http.StatusConflict || !strings.Contains(se.Message, `"echo"`) {
		t.Fatalf("second responder: %v", err)
	}
	type result struct {
		m   *msg.Message
		err error
	}
	request := func(payload string, timeout time.Duration) chan result {
		ch := make(chan result, 1)
		go func() {
			rctx, rcancel := context.WithTimeout(ctx, timeout)
			defer rcancel()
			m, err := p.b.Msg().Request(rctx, p.a.ID(), "echo", []byte(payload))
			ch <- result{m, err}
		}()
		return ch
	}
	res := request("hi", 10*time.Second)
	in, err := rs.Next()
	if err != nil {
		t.Fatal(err)
	}
	if in.From != p.b.ID().String() || string(in.Payload) != "hi" || in.Deadline.IsZero() || in.RID == "" {
		t.Fatalf("incoming request %+v", in)
	}
	if err := p.cl.ReplyRequest(ctx, client.ReplyRequest{RID: in.RID, Payload: []byte("HI")}); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || string(r.m.Payload) != "HI" {
		t.Fatalf("reply %+v", r)
	}
	// A second reply to the same request is refused.
	if err := p.cl.ReplyRequest(ctx, client.ReplyRequest{RID: in.RID, Payload: []byte("again")}); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("second reply: %v", err)
	}
	// An error reply reaches the requester.
	res = request("bad", 10*time.Second)
	if in, err = rs.Next(); err != nil {
		t.Fatal(err)
	}
	_ = p.cl.ReplyRequest(ctx, client.ReplyRequest{RID: in.RID, Error: "no thanks"})
	var re *msg.RemoteError
	if r := <-res; !errors.As(r.err, &re) || re.Message != "no thanks" {
		t.Fatalf("error reply: %v", r.err)
	}
	// The responder goes away with a request unanswered: the requester
	// learns it at once, not at its timeout; the type is free again.
	res = request("orphan", 30*time.Second)
	if _, err = rs.Next(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs.Close()
	if r := <-res; !errors.As(r.err, &re) || !strings.Contains(re.Message, "went away") || time.Since(start) > 5*time.Second {
		t.Fatalf("orphaned request: %v after %s", r.err, time.Since(start))
	}
	testutil.Eventually(t, 5*time.Second, "handler removed", func() bool {
		return !p.a.Msg().Stats().Types["echo"].Handler && !handlersRunning("msgAPI")
	})
	rs2, err := p.cl.HandleRequests(ctx, "echo")
	if err != nil {
		t.Fatalf("responder after the first left: %v", err)
	}
	rs2.Close()
}

func TestMsgBulkSendNDJSON(t *testing.T) {
	p := newMsgPair(t)
	ctx := context.Background()
	st, err := p.cl.SubscribeMessages(ctx, "nd", client.SubscribeOptions{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stb, err := p.cl.SubscribeMessages(ctx, "nd2", client.SubscribeOptions{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer stb.Close()
	// b's API this time: bulk sends go from b to a.
	srvB := NewServer(p.b, ServerOptions{})
	checkContract(t, srvB)
	hb := httptest.NewServer(srvB.Handler())
	defer hb.Close()
	cb, err := client.New(client.Endpoint{TCP: strings.TrimPrefix(hb.URL, "http://")}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	body := `{"payload":"AAEC"}` + "\n\n" + `{"payload":"","type":"nd2","priority":"high"}` + "\n" + `{"payload":"aGk="}` + "\n" + `{"payload":"bGFzdA=="}`
	res, err := cb.SendMessages(ctx, client.BulkParams{Peer: p.a.ID().String(), Type: "nd", NDJSON: true}, strings.NewReader(body))
	if err != nil || res.Sent != 4 {
		t.Fatalf("bulk: %+v %v", res, err)
	}
	var got [][]byte
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.ReceivedMessage != nil {
			got = append(got, ev.Payload)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([][]byte{{0, 1, 2}, []byte("hi"), []byte("last")}) {
		t.Fatalf("nd got %q", got)
	}
	if ev, err := stb.Next(); err != nil || ev.ReceivedMessage == nil || len(ev.Payload) != 0 {
		t.Fatalf("nd2: %+v %v", ev, err)
	}
}

func TestMsgAPIBadInput(t *testing.T) {
	p := newMsgPair(t, func(c *config.Config) { c.Messages.MaxMessageSize = 10 })
	a, b := p.a.ID().String(), p.b.ID().String()
	big := `"` + strings.Repeat("A", 40) + `"` // 30 bytes
	for _, tc := range []struct {
		method, path, ctype, body string
		code                      int
		want                      []string
	}{
		{"POST", "/v1/messages/send", "", `{"peer":"banana","type":"t"}`, 400, []string{`"banana"`, "peer ID"}},
		{"POST", "/v1/messages/send", "", `{"peer":"` + b + `","type":"a b"}`, 400, []string{`"a b"`, "A-Za-z0-9._/-"}},
		{"POST", "/v1/messages/send", "", `{"peer":"` + b + `","type":"t","priority":"urgent"}`, 400, []string{`"urgent"`, "high, normal or low"}},
		{"POST", "/v1/messages/send", "", `{"peer":"` + b + `","type":"t","payload":` + big + `}`, 400, []string{"30 bytes", "10 bytes", "max_message_size"}},
		{"POST", "/v1/messages/send", "", `{"peer":"` + a + `","type":"t"}`, 400, []string{"own peer ID"}},
		{"POST", "/v1/messages/send", "", `{"peer":"` + b + `","type":"t","id":"xyz"}`, 400, []string{`"xyz"`, "32 hex"}},
		{"POST", "/v1/messages/send", "", `{"peer":"` + b + `","typo":"t"}`, 400, []string{"typo"}},
		{"POST", "/v1/messages/send/bulk?peer=" + b + "&type=t", "application/json", "x\n", 415, []string{"text/plain", "application/x-ndjson"}},
		{"POST", "/v1/messages/send/bulk?peer=" + b + "&typ=t", "text/plain", "x\n", 400, []string{`"typ"`}},
		{"POST", "/v1/messages/send/bulk?peer=" + b, "text/plain", "x\n", 400, []string{`""`, "message type"}},
		{"POST", "/v1/messages/send/bulk?peer=" + b + "&type=t", "text/plain", "ok\n12345678901\n", 413, []string{"line 2", "10 bytes", "1 messages sent before it"}},
		{"POST", "/v1/messages/send/bulk?peer=" + b + "&type=t", "application/x-ndjson", "{\"payload\":\"aGk=\"}\n{\"payload\":1}\n", 400, []string{"line 2", "JSON object"}},
		{"GET", "/v1/messages/subscribe?type=t&policy=sometimes", "", "", 400, []string{`"sometimes"`, "drop-newest"}},
		{"GET", "/v1/messages/subscribe?type=t&buffer=99999999", "", "", 400, []string{`"99999999"`, "buffer"}},
		{"GET", "/v1/messages/subscribe?type=t&n=-1", "", "", 400, []string{`"-1"`}},
		{"GET", "/v1/messages/subscribe?type=t&dedup=maybe", "", "", 400, []string{`"maybe"`}},
		{"GET", "/v1/messages/subscribe", "", "", 400, []string{`""`, "message type"}},
		{"GET", "/v1/messages/handle?type=a%20b", "", "", 400, []string{`"a b"`}},
		{"POST", "/v1/messages/request", "", `{"peer":"` + b + `","type":"t","timeout_ms":-5}`, 400, []string{"timeout_ms -5", "1 to 3600000 milliseconds"}},
		// Too large: 2^63-1 ms would wrap the duration to a negative one.
		{"POST", "/v1/messages/request", "", `{"peer":"` + b + `","type":"t","timeout_ms":9223372036854775807}`, 400,
			[]string{"timeout_ms 9223372036854775807", "1 to 3600000 milliseconds", "messages.request_timeout"}},
		{"POST", "/v1/messages/request", "", `{"peer":"` + a + `","type":"t","timeout_ms":3600001}`, 400, []string{"timeout_ms 3600001", "1 to 3600000 milliseconds"}},
		{"POST", "/v1/messages/reply", "", `{"rid":"nope"}`, 404, []string{`"nope"`}},
	} {
		req, _ := http.NewRequest(tc.method, p.hc.URL+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := p.hc.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e client.BulkSendError
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d (%v) %q; want %d", tc.method, tc.path, resp.StatusCode, err, e.Error, tc.code)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(e.Error, w) {
				t.Errorf("%s %s: error %q does not mention %q", tc.method, tc.path, e.Error, w)
			}
		}
	}
}

// The client decodes the message records the server writes exactly as
// encoding/json does (it has a reflection-free fast path for them).
func TestMsgMessageLineCodec(t *testing.T) {
	from := newMsgTestNode(t).ID()
	msgs := []*msg.Message{
		{Type: "a/b.c-d_e", ID: msg.ID{1, 2, 3}, From: from, Payload: []byte("hi \"there\"\n\x00\xff"), Time: time.Now(), Sent: time.Now().Add(-time.Second)},
		{Type: "t", From: from, Payload: nil, Time: time.Unix(1, 5).UTC()},
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nd, stop, err := startStream(r.Context(), w, client.MessageEvent{Subscribed: &client.SubscriptionInfo{Type: "t", Policy: "block", Buffer: 1, Count: len(msgs)}})
		defer stop()
		for _, m := range msgs {
			if err == nil {
				err = nd.Write(appendMessageJSON(nil, m))
			}
		}
		if err == nil {
			nd.End(0)
		}
	}))
	defer hs.Close()
	cl, err := client.New(client.Endpoint{TCP: strings.TrimPrefix(hs.URL, "http://")}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, err := cl.SubscribeMessages(context.Background(), "t", client.SubscribeOptions{Count: len(msgs)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, m := range msgs {
		line := appendMessageJSON(nil, m)
		var viaJSON client.MessageEvent
		if err := json.Unmarshal(line, &viaJSON); err != nil || viaJSON.ReceivedMessage == nil {
			t.Fatalf("%s: %v", line, err)
		}
		ev, err := st.Next()
		if err != nil || ev.ReceivedMessage == nil {
			t.Fatalf("record %s: %+v, %v", line, ev, err)
		}
		a, _ := json.Marshal(ev.ReceivedMessage)
		b, _ := json.Marshal(viaJSON.ReceivedMessage)
		if !bytes.Equal(a, b) || !ev.Time.Equal(m.Time) || string(ev.Payload) != string(m.Payload) || ev.ID != m.ID.String() {
			t.Fatalf("client %s\njson %s", a, b)
		}
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the messages: %v, want io.EOF", err)
	}
}

// A message of the largest size any configuration allows fits in one record
// of the client's stream reader, with room to spare; the client's idea of
// that size is config's.
func TestMsgRecordLimitFitsLargestMessage(t *testing.T) {
	if client.MaxMessageSize != config.MaxDirectMessageSize {
		t.Fatalf("client.MaxMessageSize %d, config.MaxDirectMessageSize %d", client.MaxMessageSize, config.MaxDirectMessageSize)
	}
	from := newMsgTestNode(t).ID()
	m := &msg.Message{Type: strings.Repeat("t", msg.MaxTypeLen), ID: msg.ID{1}, From: from, Time: time.Now(), Sent: time.Now()}
	n := len(appendMessageJSON(nil, m)) + base64.StdEncoding.EncodedLen(config.MaxDirectMessageSize)
	if n+64<<10 > client.MaxStreamRecord {
		t.Fatalf("a record of a %d-byte message is %d bytes; the client's record limit is %d", config.MaxDirectMessageSize, n, client.MaxStreamRecord)
	}
}

// The client streams a record of a message of the largest size any
// configuration allows (what a daemon with messages.max_message_size at its
// upper bound writes). The daemon is simulated, as streaming through libp2p
// adds nothing to what is tested here.
func TestMsgStreamLargestMessage(t *testing.T) {
	from := newMsgTestNode(t).ID()
	payload := bytes.Repeat([]byte("0123456789abcdef"), config.MaxDirectMessageSize/16)
	payload[len(payload)-1] = '!'
	m := &msg.Message{Type: "huge", ID: msg.ID{1}, From: from, Time: time.Now(), Payload: payload}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nd, stop, err := startStream(r.Context(), w, client.MessageEvent{Subscribed: &client.SubscriptionInfo{Type: "huge", Policy: "block", Buffer: 1, Count: 1}})
		defer stop()
		if err == nil {
			_, _ = w.Write(appendMessageJSON(nil, m))
			_ = nd.rc.Flush()
		}
	}))
	defer hs.Close()
	cl, err := client.New(client.Endpoint{TCP: strings.TrimPrefix(hs.URL, "http://")}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	st, err := cl.SubscribeMessages(context.Background(), "huge", client.SubscribeOptions{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, err := st.Next()
	if err != nil {
		t.Fatalf("streaming a %d-byte message: %v", len(payload), err)
	}
	if ev.ReceivedMessage == nil || !bytes.Equal(ev.Payload, payload) {
		t.Fatalf("got a record of %d payload bytes, want the %d sent", len(ev.Payload), len(payload))
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the message: %v, want io.EOF", err)
	}
	t.Logf("%d-byte message streamed in %s", len(payload), time.Since(start).Round(time.Millisecond))
}
