package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestFloodBecomesOneLineAndASummary(t *testing.T) {
	var buf syncBuf
	// The 2,000 records must all fall in the first window: one of 50 ms
	// could end mid-loop on a loaded machine, then a record is logged anew.
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
	defer l.Close()
	for i := 0; i < 1000; i++ {
		l.Warn("bad frame", "peer", i)
		l.Warn("refused stream", "peer", i)
	}
	if got := l.Suppressed(); got != 1998 {
		t.Fatalf("suppressed = %d, want 1998", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(buf.lines()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := buf.lines()
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4 (first of each kind + a summary each):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var summaries int
	for _, ln := range lines {
		if strings.Contains(ln, "999 more like this in the last 1 s") {
			summaries++
			if !strings.Contains(ln, "peer=999") {
				t.Errorf("summary lacks the last record's attributes: %s", ln)
			}
		}
	}
	if summaries != 2 {
		t.Fatalf("want 2 summaries, got %d:\n%s", summaries, strings.Join(lines, "\n"))
	}
	if got := windowText(10 * time.Second); got != "10 s" {
		t.Errorf("window text %q, want \"10 s\"", got)
	}
	// A new window logs again.
	l.Warn("bad frame", "peer", "again")
	if got := buf.lines(); !strings.Contains(got[len(got)-1], "peer=again") {
		t.Fatalf("a record in a new window was held back: %v", got)
	}
}

func TestCloseFlushesAndStops(t *testing.T) {
	var buf syncBuf
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)
	l.Warn("x")
	l.Warn("x")
	l.Warn("x")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Warn("x")
	lines := buf.lines()
	if len(lines) != 2 || !strings.Contains(lines[1], "2 more like this") {
		t.Fatalf("lines after Close: %v", lines)
	}
}

func TestBelowLevelIsNotCounted(t *testing.T) {
	l := New(slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError})), 0)
	defer l.Close()
	l.Warn("x")
	l.Warn("x")
	if l.Suppressed() != 0 {
		t.Fatal("records below the handler's level were counted")
	}
}

// Close waits for window flushes: none runs after it returns.
func TestNoFlushAfterClose(t *testing.T) {
	for range 200 {
		var buf syncBuf
		l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Microsecond)
		l.Warn("x")
		l.Warn("x")
		time.Sleep(time.Duration(time.Now().UnixNano()%3) * time.Microsecond)
		_ = l.Close()
		n := len(buf.lines())
		time.Sleep(time.Millisecond)
		if got := len(buf.lines()); got != n {
			t.Fatalf("%d lines at Close, %d after", n, got)
		}
	}
}
