package msg

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func TestCodecRoundTrip(t *testing.T) {
	id := ID{1, 2, 3, 15: 9}
	cases := []struct {
		typ                  string
		payload              []byte
		flags, corr, timeout uint64
		sent                 int64
	}{
		{"a", nil, 0, 0, 0, 0},
		{"chat/text", []byte("hello"), 0, 0, 0, 1700000000123456789},
		{"rpc.x", bytes.Repeat([]byte{7}, 300), flagRequest, 1 << 40, 1500, -5},
		{"rpc.x", []byte("boom"), flagResponse | flagError, 7, 0, 1},
	}
	var stream []byte
	for _, c := range cases {
		stream = appendFrame(stream, c.typ, &id, c.payload, c.sent, c.flags, c.corr, c.timeout)
	}
	fr := newFrameReader(bytes.NewReader(stream), 1<<20, 16)
	for i, c := range cases {
		body, err := fr.next()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(body) != envelopeSize(len(c.typ), len(c.payload), c.flags, c.corr, c.timeout) {
			t.Fatalf("case %d: body %d bytes, envelopeSize says %d", i, len(body), envelopeSize(len(c.typ), len(c.payload), c.flags, c.corr, c.timeout))
		}
		var e envelope
		if err := decodeEnvelope(body, &e); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if string(e.typ) != c.typ || !bytes.Equal(e.payload, c.payload) || e.id != id ||
			e.flags != c.flags || e.corr != c.corr || e.timeout != c.timeout || e.sent != c.sent {
			t.Fatalf("case %d: got %+v", i, e)
		}
	}
	if _, err := fr.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("at end: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	id := ID{1}
	good := appendFrame(nil, "t", &id, []byte("p"), 0, 0, 0, 0)
	_, n := protowire.ConsumeVarint(good)
	body := good[n:]
	// Unknown fields are skipped.
	withUnknown := protowire.AppendTag(append([]byte(nil), body...), 99, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("future"))
	var e envelope
	if err := decodeEnvelope(withUnknown, &e); err != nil {
		t.Fatalf("unknown field: %v", err)
	}
	bad := map[string][]byte{
		"empty":          {},
		"truncated":      body[:len(body)-1],
		"no type":        protowire.AppendBytes(protowire.AppendTag(nil, fieldID, protowire.BytesType), id[:]),
		"bad type":       appendFrame(nil, "a b", &id, nil, 0, 0, 0, 0)[1:],
		"short id":       append(protowire.AppendString(protowire.AppendTag(nil, fieldType, protowire.BytesType), "t"), protowire.AppendBytes(protowire.AppendTag(nil, fieldID, protowire.BytesType), id[:3])...),
		"req+resp":       appendFrame(nil, "t", &id, nil, 0, flagRequest|flagResponse, 1, 0)[1:],
		"error alone":    appendFrame(nil, "t", &id, nil, 0, flagError, 1, 0)[1:],
		"req no corr":    appendFrame(nil, "t", &id, nil, 0, flagRequest, 0, 0)[1:],
		"unknown flag":   appendFrame(nil, "t", &id, nil, 0, 64, 1, 0)[1:],
		"wrong wiretype": protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), body...), fieldType, protowire.VarintType), 1),
	}
	for name, b := range bad {
		if err := decodeEnvelope(b, &e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the frame reader and envelope decoder:
// they must never panic, never return a frame over the limit, and whatever
// decodes must re-encode to an envelope that decodes the same.
func FuzzDecode(f *testing.F) {
	id := ID{1, 2, 3}
	f.Add(appendFrame(nil, "chat/text", &id, []byte("hello"), 42, 0, 0, 0))
	f.Add(appendFrame(nil, "rpc", &id, []byte("q"), 1, flagRequest, 9, 1000))
	f.Add(appendFrame(appendFrame(nil, "a", &id, nil, 0, 0, 0, 0), "b", &id, []byte{0}, 0, flagResponse|flagError, 3, 0))
	f.Add(protowire.AppendVarint(nil, 1<<40))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x03, 0x0a, 0x01})
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), limit, 64)
		// A small base exercises the growing buffer, and a memory budget
		// its reservations: whatever happens, all is released at the end.
		fr.base = 16
		const budget = 2048
		used := 0
		fr.reserve = func(n int) error {
			if used+n > budget {
				return errors.New("over budget")
			}
			used += n
			return nil
		}
		fr.unreserve = func(n int) { used -= n }
		defer func() {
			fr.release()
			if used != 0 {
				t.Fatalf("%d bytes still reserved after release", used)
			}
		}()
		for {
			body, err := fr.next()
			if err != nil {
				return
			}
			if used > budget || (fr.ownBuffer() && cap(body) > used) {
				t.Fatalf("frame of %d bytes in a buffer of %d, %d reserved", len(body), cap(body), used)
			}
			if len(body) > limit {
				t.Fatalf("frame of %d bytes over limit %d", len(body), limit)
			}
			var e envelope
			if decodeEnvelope(body, &e) != nil {
				continue
			}
			re := appendFrame(nil, string(e.typ), &e.id, e.payload, e.sent, e.flags, e.corr, e.timeout)
			_, n := protowire.ConsumeVarint(re)
			var e2 envelope
			if err := decodeEnvelope(re[n:], &e2); err != nil {
				t.Fatalf("re-encoded envelope does not decode: %v", err)
			}
			if !bytes.Equal(e.typ, e2.typ) || !bytes.Equal(e.payload, e2.payload) || e.id != e2.id ||
				e.flags != e2.flags || e.corr != e2.corr || e.timeout != e2.timeout || e.sent != e2.sent {
				t.Fatalf("round trip mismatch: %+v vs %+v", e, e2)
			}
		}
	})
}

// The writer serves classes 8:4:1 per round: High first, Low never starved.
func TestWeightedRoundRobin(t *testing.T) {
	s := &Service{opts: Options{SendQueue: 100}}
	op := newOutPeer(s, "p", nil)
	mk := func(p Priority) *frame { return &frame{n: int(p)} }
	for range 100 {
		op.q[Low].push(mk(Low))
		op.q[High].push(mk(High))
		op.q[Normal].push(mk(Normal))
	}
	batch := op.takeLocked(nil)
	if len(batch) != maxBatch {
		t.Fatalf("batch of %d, want %d", len(batch), maxBatch)
	}
	want := []Priority{High, High, High, High, High, High, High, High, Normal, Normal, Normal, Normal, Low}
	for i, f := range batch[:2*len(want)] {
		if Priority(f.n) != want[i%len(want)] {
			t.Fatalf("position %d: got %v, want %v", i, Priority(f.n), want[i%len(want)])
		}
	}
	// Once High is exhausted Normal and Low share the rounds 4:1.
	counts := map[Priority]int{}
	for _, f := range batch {
		counts[Priority(f.n)]++
	}
	if counts[High] != 100 || counts[Normal] != 100 || counts[Low] != 56 {
		t.Fatalf("first batch counts %v, want high 100, normal 100, low 56", counts)
	}
	rest := op.takeLocked(nil)
	if len(rest) != 300-maxBatch || op.q[Low].len()+op.q[Normal].len()+op.q[High].len() != 0 {
		t.Fatalf("second batch %d frames, %d left queued", len(rest), op.q[Low].len()+op.q[Normal].len())
	}
}

func TestFrameRingGrows(t *testing.T) {
	var r frameRing
	r.init(200)
	next := 0 // next value expected out
	for i := range 200 {
		if !r.push(&frame{n: i}) {
			t.Fatalf("push %d refused", i)
		}
		if i%3 == 0 { // interleave pops so the ring wraps while growing
			if got := r.pop().n; got != next {
				t.Fatalf("popped %d, want %d", got, next)
			}
			next++
		}
	}
	for r.len() > 0 {
		if got := r.pop().n; got != next {
			t.Fatalf("popped %d, want %d", got, next)
		}
		next++
	}
	if next != 200 {
		t.Fatalf("drained %d of 200", next)
	}
	for i := range 200 {
		if !r.push(&frame{n: i}) {
			t.Fatalf("refill push %d refused", i)
		}
	}
	if r.push(&frame{}) {
		t.Fatal("push over capacity accepted")
	}
}

// A frame that outgrows the reused buffer must be complete by its deadline:
// past it, expire is called (the service resets the stream there, which
// ends the read) and next fails with errSlowFrame. A frame that arrives in
// time, or fits the reused buffer, is not affected.
func TestFrameDeadline(t *testing.T) {
	const size = 200 << 10
	frame := append(protowire.AppendVarint(nil, size), make([]byte, size)...)

	t.Run("withheld", func(t *testing.T) {
		pr, pw := io.Pipe()
		fr := newFrameReader(pr, 1<<20, 16)
		var asked []int
		fr.deadline = func(n int) time.Duration { asked = append(asked, n); return 50 * time.Millisecond }
		fr.expire = func() { _ = pr.CloseWithError(errors.New("stream reset")) }
		go func() { _, _ = pw.Write(frame[:len(frame)-1]) }() // all but the last byte
		_, err := fr.next()
		if !errors.Is(err, errSlowFrame) {
			t.Fatalf("withheld frame: %v, want errSlowFrame", err)
		}
		if len(asked) != 1 || asked[0] != size {
			t.Fatalf("deadline asked for %v, want once for %d", asked, size)
		}
		fr.release()
	})
	t.Run("in time", func(t *testing.T) {
		small := appendFrame(nil, "a", &ID{}, make([]byte, 1000), 0, 0, 0, 0)
		fr := newFrameReader(bytes.NewReader(append(slices.Clip(frame), small...)), 1<<20, 16)
		var asked int
		var expired atomic.Bool
		fr.deadline = func(int) time.Duration { asked++; return 100 * time.Millisecond }
		fr.expire = func() { expired.Store(true) }
		if b, err := fr.next(); err != nil || len(b) != size {
			t.Fatalf("frame in time: %d bytes, %v", len(b), err)
		}
		if b, err := fr.next(); err != nil || len(b) != len(small)-2 {
			t.Fatalf("small frame: %d bytes, %v", len(b), err)
		}
		if asked != 1 {
			t.Fatalf("deadline asked %d times, want once (not for the small frame)", asked)
		}
		time.Sleep(200 * time.Millisecond) // past the deadline: the timer was stopped
		if expired.Load() {
			t.Fatal("expire called for a frame that arrived in time")
		}
	})
}
