package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// screen is a chat's stdout, safe to read while it writes.
type screen struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// participant is one chat running in-process.
type participant struct {
	in   *io.PipeWriter
	out  *screen
	done chan error
}

func start(t *testing.T, o Options) *participant {
	t.Helper()
	pr, pw := io.Pipe()
	p := &participant{in: pw, out: &screen{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { p.done <- run(ctx, o, pr, p.out) }()
	t.Cleanup(func() {
		cancel()
		pw.Close()
		if err := <-p.done; err != nil {
			t.Errorf("chat %s: %v", o.Nick, err)
		}
	})
	return p
}

func (p *participant) say(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(p.in, text+"\n"); err != nil {
		t.Fatalf("type %q: %v", text, err)
	}
}

// waitFor waits until the screen matches re and returns the submatches.
func (p *participant) waitFor(t *testing.T, re *regexp.Regexp, every func()) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %s:\n%s", re, p.out.String())
		}
		if every != nil {
			every()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTwoChatsTalk(t *testing.T) {
	dir, err := os.MkdirTemp("", "chat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	alice := start(t, Options{Repo: filepath.Join(dir, "alice"), Profile: "test", Nick: "alice", Room: "test"})
	m := alice.waitFor(t, regexp.MustCompile(`you are alice \((\S+)\)[^\n]*\nchat: others join with --peer (\S+)`), nil)
	aliceID, aliceAddr := m[1], m[2]
	bob := start(t, Options{Repo: filepath.Join(dir, "bob"), Profile: "test", Nick: "bob", Room: "test", Peers: []string{aliceAddr}})
	m = bob.waitFor(t, regexp.MustCompile(`you are bob \((\S+)\)`), nil)
	bobID := m[1]

	// Alice types until Bob's room subscription is known to her node; the
	// first lines may find nobody in the room yet.
	bob.waitFor(t, regexp.MustCompile(`\[\d\d:\d\d:\d\d\] <alice> hello from alice\n`), func() { alice.say(t, "hello from alice") })
	bob.say(t, "hi alice")
	alice.waitFor(t, regexp.MustCompile(`\[\d\d:\d\d:\d\d\] <bob> hi alice\n`), nil)
	if strings.Contains(alice.out.String(), "<alice> hello") {
		t.Errorf("alice's own lines are echoed back to her:\n%s", alice.out.String())
	}

	bob.say(t, "/msg "+aliceID+" just for you")
	alice.waitFor(t, regexp.MustCompile(`<bob> \(direct\) just for you\n`), nil)
	bob.say(t, "/peers")
	bob.waitFor(t, regexp.MustCompile(`chat: `+aliceID+` alice \(in this room\)`), nil)
	alice.say(t, "/msg nobody x")
	alice.waitFor(t, regexp.MustCompile(`chat: /msg nobody: .*peer ID`), nil)
	if strings.Contains(bob.out.String(), "(direct) x") {
		t.Error("a /msg with a bad peer ID was delivered")
	}
	alice.say(t, "/peers")
	alice.waitFor(t, regexp.MustCompile(`chat: `+bobID+` bob \(in this room\)`), nil)
}
