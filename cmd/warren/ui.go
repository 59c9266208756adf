package main

// What the CLI prints for a person at a terminal: short peer IDs, payloads
// with their control characters escaped, the stdin hint, and reading stdin
// so that Ctrl-C ends it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// shortID abbreviates a peer ID for tables: its first 4 and last 4
// characters ("12D3…wXyZ"). --wide prints the whole ID.
func shortID(id string, wide bool) string {
	if wide || utf8.RuneCountInString(id) <= 12 {
		return id
	}
	return id[:4] + "…" + id[len(id)-4:]
}

// tableWidth is the width tables keep to without --wide.
const tableWidth = 120

// printTable writes the table that fill makes; without wide, each line is
// cut to tableWidth columns (the last column, a status or an error, ends in
// "…"): --wide prints everything.
func printTable(w io.Writer, wide bool, fill func(*tabwriter.Writer)) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fill(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	out := buf.String()
	if !wide {
		lines := strings.SplitAfter(out, "\n")
		for i, l := range lines {
			l = strings.TrimRight(l, " \n")
			if r := []rune(l); len(r) > tableWidth {
				l = string(r[:tableWidth-1]) + "…"
			}
			if lines[i] != "" {
				lines[i] = l + "\n"
			}
		}
		out = strings.Join(lines, "")
	}
	_, err := io.WriteString(w, out)
	return err
}

// escapeText returns a payload as one line a terminal cannot be steered by:
// printable characters as they are, and control characters (ESC, newline,
// carriage return, DEL, C1 controls, invalid UTF-8) as Go escapes (\x1b, \n).
// A backslash is doubled, so the escapes are unambiguous.
func escapeText(p []byte) string {
	var b strings.Builder
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, p[0])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && (r < 0x20 || r == 0x7f):
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			// C1 controls, bidi overrides, zero-width characters.
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		p = p[n:]
	}
	return b.String()
}

// terminalText is a multi-line payload made safe for a terminal: its lines
// and tabs kept, every other control character escaped as escapeText does.
func terminalText(p []byte) string {
	lines := bytes.Split(p, []byte{'\n'})
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.ReplaceAll(escapeText(l), `\t`, "\t")
	}
	return strings.Join(out, "\n")
}

// isText reports whether a payload is shown as text: valid UTF-8 with no
// NUL byte (its other control characters are escaped). Anything else
// (binary data) is shown as "<N bytes>" unless --raw is given.
func isText(p []byte) bool {
	return utf8.Valid(p) && bytes.IndexByte(p, 0) < 0
}

// showPayload is how recv and sub print one message's payload in text mode:
// escaped text, or "<N bytes>" for a payload that is not text.
func showPayload(p []byte) string {
	if !isText(p) {
		return fmt.Sprintf("<%d bytes>", len(p))
	}
	return escapeText(p)
}

// isTerminal reports whether r is a terminal (not a pipe, file or /dev/null).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// stdinHint is printed on stderr when a command reads a message from a
// terminal, so that a person does not wonder why it waits.
const stdinHint = "warren: reading the message from stdin; Ctrl-D to end (Ctrl-C to cancel)"

// errInterrupted is the error of a command that Ctrl-C ended before it did
// its work (send, pub); main exits 130 on it.
var errInterrupted = errors.New("interrupted")

// ctxReader reads r until ctx ends: a Read blocked on a terminal or pipe
// then returns ctx's error at once (the blocked read is left to the process
// exit).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	res chan readResult
	buf []byte
}

type readResult struct {
	n   int
	err error
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	return &ctxReader{ctx: ctx, r: r, res: make(chan readResult, 1)}
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, errInterrupted
	}
	if len(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	buf := c.buf[:len(p)]
	go func() {
		n, err := c.r.Read(buf)
		c.res <- readResult{n, err}
	}()
	select {
	case r := <-c.res:
		copy(p, buf[:r.n])
		return r.n, r.err
	case <-c.ctx.Done():
		c.buf = nil // the blocked read still owns the old one
		return 0, errInterrupted
	}
}

// stdin returns the command's stdin, readable until ctx ends (Ctrl-C), and
// prints the hint when it is a terminal.
func (e *env) stdinFor(ctx context.Context) io.Reader {
	if isTerminal(e.stdin) {
		fmt.Fprintln(e.stderr, stdinHint)
	}
	return newCtxReader(ctx, e.stdin)
}

// skipEmptyLines passes r through without its empty lines, counting them:
// --lines sends no empty message.
type skipEmptyLines struct {
	r       io.Reader
	atStart bool // the next byte starts a line
	pending []byte
	buf     []byte
	skipped int
}

func newSkipEmptyLines(r io.Reader) *skipEmptyLines { return &skipEmptyLines{r: r, atStart: true} }

func (s *skipEmptyLines) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if len(s.buf) < len(p) {
			s.buf = make([]byte, max(len(p), 512))
		}
		buf := s.buf[:max(len(p), 512)]
		n, err := s.r.Read(buf)
		for _, c := range buf[:n] {
			if c == '\n' && s.atStart {
				s.skipped++
				continue
			}
			s.pending = append(s.pending, c)
			s.atStart = c == '\n'
		}
		if err != nil && len(s.pending) == 0 {
			return 0, err
		}
		if err != nil {
			break
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}
