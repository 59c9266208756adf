// Package ratelog rate-limits log lines caused by remote input.
//
// A remote peer can make a node log as fast as it can send bad frames or
// refused streams. A Logger lets the first line of each kind through in every
// window (10 s by default) and counts the rest; when the window closes it
// writes one summary, "N more like this in the last 10 s", with the attributes
// of the last suppressed record. A kind is the record's message, which callers
// keep a constant, so the number of kinds is bounded by the code, not by
// remote input.
package ratelog

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// DefaultWindow is the window used when New is given zero.
const DefaultWindow = 10 * time.Second

// Logger rate-limits records per message. Its zero value is not usable; use
// New. All methods are safe for concurrent use. Close stops its timers and
// flushes pending summaries.
type Logger struct {
	log    *slog.Logger
	window time.Duration

	wg     sync.WaitGroup // window timers not yet stopped or flushed
	mu     sync.Mutex
	kinds  map[string]*kind
	closed bool
	// Suppressed counts every record held back, for metrics and tests.
	suppressed uint64
}

type kind struct {
	level      slog.Level
	suppressed int
	lastArgs   []any
	timer      *time.Timer
}

// New returns a Logger that writes to log. window <= 0 means DefaultWindow.
// A nil log discards everything.
func New(log *slog.Logger, window time.Duration) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if window <= 0 {
		window = DefaultWindow
	}
	return &Logger{log: log, window: window, kinds: make(map[string]*kind)}
}

// Warn logs at warning level, rate-limited by msg.
func (l *Logger) Warn(msg string, args ...any) { l.Log(slog.LevelWarn, msg, args...) }

// Info logs at info level, rate-limited by msg.
func (l *Logger) Info(msg string, args ...any) { l.Log(slog.LevelInfo, msg, args...) }

// Log writes msg at level unless a record with the same msg was written in the
// current window; then it only counts it.
func (l *Logger) Log(level slog.Level, msg string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	k := l.kinds[msg]
	if k != nil {
		k.suppressed++
		k.lastArgs = args
		l.suppressed++
		l.mu.Unlock()
		return
	}
	k = &kind{level: level}
	l.kinds[msg] = k
	l.wg.Add(1)
	k.timer = time.AfterFunc(l.window, func() { l.flush(msg) })
	l.mu.Unlock()
	l.log.Log(context.Background(), level, msg, args...)
}

// flush ends msg's window, writing its summary if anything was held back.
func (l *Logger) flush(msg string) {
	defer l.wg.Done()
	l.mu.Lock()
	k := l.kinds[msg]
	if k == nil {
		l.mu.Unlock()
		return
	}
	delete(l.kinds, msg)
	n, args, level := k.suppressed, k.lastArgs, k.level
	l.mu.Unlock()
	l.summary(level, msg, n, args)
}

func (l *Logger) summary(level slog.Level, msg string, n int, args []any) {
	if n == 0 {
		return
	}
	all := append([]any{"suppressed", n, "window", l.window.String()}, args...)
	l.log.Log(context.Background(), level, msg+" ("+strconv.Itoa(n)+" more like this in the last "+windowText(l.window)+")", all...)
}

// Suppressed reports how many records have been held back so far.
func (l *Logger) Suppressed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.suppressed
}

// Close stops the window timers, waits for a summary already being written
// and writes the pending ones. Later records are dropped. It always returns
// nil.
func (l *Logger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	kinds := l.kinds
	l.kinds = nil
	l.mu.Unlock()
	for msg, k := range kinds {
		if k.timer.Stop() {
			l.wg.Done() // its flush will not run
		}
		l.summary(k.level, msg, k.suppressed, k.lastArgs)
	}
	l.wg.Wait() // a flush that had already started
	return nil
}

// windowText writes a window as people do: "10 s", or Go's form ("1m30s",
// "50ms") when it is not whole seconds under a minute.
func windowText(d time.Duration) string {
	if d%time.Second == 0 && d < time.Minute {
		return strconv.Itoa(int(d/time.Second)) + " s"
	}
	return d.String()
}
