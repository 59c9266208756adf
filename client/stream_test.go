package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The reflection-free decoder agrees with encoding/json on records in the
// daemon's form, and declines anything else.
func TestParseMessageLine(t *testing.T) {
	for _, l := range []string{
		`{"type":"a/b.c-d_e","from":"12D3KooWabc","id":"0102","time":"2026-01-02T03:04:05.000000006Z","sent":"2026-01-02T03:04:04Z","payload":"aGkgInRoZXJlIgoA/w=="}`,
		`{"type":"t","from":"12D3KooWabc","id":"00","time":"1970-01-01T00:00:01.000000005Z","payload":""}`,
	} {
		var viaJSON MessageEvent
		if err := json.Unmarshal([]byte(l), &viaJSON); err != nil || viaJSON.ReceivedMessage == nil {
			t.Fatalf("%s: %v", l, err)
		}
		fast, ok := parseMessageLine([]byte(l + "\n"))
		if !ok {
			t.Fatalf("fast decoder declined %s", l)
		}
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(viaJSON.ReceivedMessage)
		if !bytes.Equal(a, b) || !fast.Time.Equal(viaJSON.Time) {
			t.Fatalf("fast %s\njson %s", a, b)
		}
	}
	for _, l := range []string{`{"dropped":5}`, `{"subscribed":{"type":"t"}}`, `{"type":"t","x":"y","payload":""}`, `{"type":"a\"b","payload":""}`} {
		if _, ok := parseMessageLine([]byte(l)); ok {
			t.Errorf("fast decoder accepted %s", l)
		}
	}
}

// FuzzParseMessageLine: the client's reflection-free parser of stream
// records never panics, and agrees with encoding/json whenever it accepts.
func FuzzParseMessageLine(f *testing.F) {
	f.Add([]byte(`{"type":"t","from":"12D3KooW","id":"00","time":"2026-01-02T03:04:05.000000006Z","payload":"aGk="}` + "\n"))
	f.Add([]byte(`{"type":"t","from":"x","id":"y","time":"2026-01-02T03:04:05Z","sent":"2026-01-02T03:04:05Z","payload":""}`))
	f.Add([]byte(`{"dropped":3}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, ok := parseMessageLine(line)
		if !ok {
			return
		}
		var want ReceivedMessage
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("parseMessageLine accepted %q, which encoding/json refuses: %v", line, err)
		}
		if !m.Time.Equal(want.Time) || !m.Sent.Equal(want.Sent) || m.Type != want.Type || m.From != want.From ||
			m.ID != want.ID || !bytes.Equal(m.Payload, want.Payload) {
			t.Fatalf("parseMessageLine(%q) = %+v, encoding/json %+v", line, m, want)
		}
	})
}

// The stream reader takes a record over the old fixed limit of 80 MiB, up
// to MaxStreamRecord, and refuses a longer one, naming the limit.
func TestStreamRecordLimit(t *testing.T) {
	const oldLimit = 80 << 20
	fill := fillReader(bytes.Repeat([]byte("x"), 64<<10))
	record := func(n int) io.Reader { // n bytes with the newline
		return io.MultiReader(io.LimitReader(fill, int64(n-1)), strings.NewReader("\n"))
	}
	// The reader checks the limit once per 64 KiB read, so a record is
	// refused at most that much past it.
	tooLong := MaxStreamRecord + 64<<10 + 1
	s := &ndjsonReader{path: "/v1/test", br: bufio.NewReaderSize(io.MultiReader(record(oldLimit+1<<20), record(MaxStreamRecord), record(tooLong)), 64<<10)}
	for _, n := range []int{oldLimit + 1<<20, MaxStreamRecord} {
		if line, err := s.line(); err != nil || len(line) != n {
			t.Fatalf("record of %d bytes: got %d bytes, %v", n, len(line), err)
		}
	}
	if _, err := s.line(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes", MaxStreamRecord)) {
		t.Fatalf("record of %d bytes, over the limit of %d: %v", tooLong, MaxStreamRecord, err)
	}
}

// fillReader reads as an endless repetition of its block.
type fillReader []byte

func (f fillReader) Read(p []byte) (int, error) { return copy(p, f), nil }

// An error answer becomes an *Error with the status, code and message;
// the bulk calls also return the count the error body carries; an answer
// that is not the API's JSON keeps its text.
func TestErrorAnswers(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/messages/send/bulk":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `{"error":"bulk send: line 3: peer gone","code":"unreachable","sent":2}`)
		case "/v1/messages/handle":
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":"taken","code":"conflict"}`)
		default:
			http.Error(w, "plain text", http.StatusTeapot)
		}
	}))
	defer hs.Close()
	cl, err := New(Endpoint{TCP: strings.TrimPrefix(hs.URL, "http://")}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := cl.SendMessages(ctx, BulkParams{Peer: "p", Type: "t"}, strings.NewReader("a\nb\nc\n"))
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != CodeUnreachable || e.Message != "bulk send: line 3: peer gone" || res.Sent != 2 {
		t.Fatalf("bulk: %+v, %#v", res, err)
	}
	if _, err := cl.HandleRequests(ctx, "t"); ErrorCode(err) != CodeConflict {
		t.Fatalf("handle: %#v", err)
	}
	if _, err := cl.ID(ctx); !errors.As(err, &e) || e.Status != http.StatusTeapot || e.Code != "" || e.Message != "plain text" {
		t.Fatalf("plain: %#v", err)
	}
}
