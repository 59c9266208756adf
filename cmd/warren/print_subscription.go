package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Printing a subscription stream (recv and sub): its messages on stdout,
// its drops on stderr.

// subscription is an open subscription stream of the API client whose
// records are E: *client.MessageStream (recv) or *client.TopicStream (sub).
type subscription[E any] interface {
	Next() (E, error)
	Buffered() bool
	Received() uint64
	Dropped() uint64
}

// textOf is the payload as a string for --json's "text" field, when it is
// valid UTF-8 (nil otherwise: the base64 field alone carries it).
func textOf(p []byte) *string {
	if !utf8.Valid(p) {
		return nil
	}
	s := string(p)
	return &s
}

// record is a subscription stream's record taken apart: a message (msg,
// printed by --json, and its payload) or a drop report (dropped).
type record struct {
	msg     any // nil for a drop report
	from    string
	payload []byte
	dropped *uint64
}

// textStyle is how text mode prints a message: raw (the payload's bytes as
// they are, for a pipe), else "<sender>: <escaped text or <N bytes>>".
type textStyle struct{ raw, wide bool }

// printSubscription prints st's messages until it ends: each as one line
// of text (see textStyle), or with asJSON each message as one JSON line. It flushes
// its output whenever no further record has arrived yet, reports drops on
// stderr at most once a second (dropNote words the report), and ends with
// "received X, dropped Y" on stderr. ctx ending (Ctrl-C) and the stream
// ending after its -n messages are not errors.
func printSubscription[E any](ctx context.Context, e *env, st subscription[E], asJSON bool, style textStyle,
	split func(E) record, dropNote func(dropped uint64) string) error {
	err := printRecords(e, st, asJSON, style, split, dropNote)
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		err = nil // interrupted, or -n reached
	}
	fmt.Fprintf(e.stderr, "received %d, dropped %d\n", st.Received(), st.Dropped())
	return err
}

// printRecords is printSubscription's loop; it returns st's error.
func printRecords[E any](e *env, st subscription[E], asJSON bool, style textStyle, split func(E) record, dropNote func(uint64) string) error {
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	var noticed uint64
	var noticedAt time.Time
	for {
		ev, err := st.Next()
		if err != nil {
			return err
		}
		r := split(ev)
		switch {
		case r.msg != nil && asJSON:
			b, err := json.Marshal(r.msg)
			if err != nil {
				return fmt.Errorf("encode message as JSON: %w", err)
			}
			if _, err := out.Write(append(b, '\n')); err != nil {
				return fmt.Errorf("write to stdout: %w", err)
			}
		case r.msg != nil && style.raw:
			if err := textLine(out, r.payload); err != nil {
				return fmt.Errorf("write to stdout: %w", err)
			}
		case r.msg != nil:
			if _, err := fmt.Fprintf(out, "%s: %s\n", shortID(r.from, style.wide), showPayload(r.payload)); err != nil {
				return fmt.Errorf("write to stdout: %w", err)
			}
		case r.dropped != nil && *r.dropped != noticed && time.Since(noticedAt) >= time.Second:
			noticed, noticedAt = *r.dropped, time.Now()
			fmt.Fprintln(e.stderr, dropNote(noticed))
		}
		if !st.Buffered() {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("write to stdout: %w", err)
			}
		}
	}
}
