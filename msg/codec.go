package msg

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Wire format. Every frame is an unsigned varint length followed by that many
// bytes of a protobuf message (encoded by hand with protowire):
//
//	message Envelope {
//	  bytes   type       = 1; // required, a valid type name
//	  bytes   id         = 2; // required, exactly 16 bytes
//	  bytes   payload    = 3;
//	  fixed64 sent       = 4; // sender's clock, Unix nanoseconds
//	  uint64  flags      = 5; // 1 request, 2 response, 4 error (with response)
//	  uint64  corr       = 6; // correlation id of a request and its response
//	  uint64  timeout_ms = 7; // requester's remaining time (request only)
//	}
//
// Unknown fields are skipped so later versions can add fields. The encoder
// writes `sent` first so the sender's writer can stamp it in place (see
// stampSent) with one clock read per batch instead of one per message, and
// the payload last, so that a receiver refusing an oversized frame can
// still read its header (flags, corr and the payload's length: see
// frameTooLargeError) and fail the request it answers at once.
const (
	fieldType    protowire.Number = 1
	fieldID      protowire.Number = 2
	fieldPayload protowire.Number = 3
	fieldSent    protowire.Number = 4
	fieldFlags   protowire.Number = 5
	fieldCorr    protowire.Number = 6
	fieldTimeout protowire.Number = 7
)

const (
	flagRequest  = 1
	flagResponse = 2
	flagError    = 4
	knownFlags   = flagRequest | flagResponse | flagError
)

// envelopeOverhead bounds everything in an envelope except the payload bytes:
// type (2+64), id (2+16), payload header (1+10), sent (1+8), flags, corr,
// timeout (3*(1+10)). A frame longer than MaxMessageSize+envelopeOverhead is
// rejected from its length prefix alone.
const envelopeOverhead = 256

// errFrameTooLarge is wrapped by the error returned when a frame's length
// prefix exceeds the limit (a *frameTooLargeError).
var errFrameTooLarge = errors.New("frame too large")

// errSlowFrame is wrapped by the error returned when a frame that needs a
// buffer of its own does not arrive by its deadline.
var errSlowFrame = errors.New("frame too slow")

// errFrameMemory is wrapped by the error returned when the resource manager
// refuses memory for the rest of a frame.
var errFrameMemory = errors.New("frame memory refused")

// envelope is the decoded form of one frame. typ and payload alias the frame
// buffer after decodeEnvelope.
type envelope struct {
	typ     []byte
	id      ID
	payload []byte
	sent    int64
	flags   uint64
	corr    uint64
	timeout uint64 // milliseconds
	// owned says the frame buffer is not reused, so payload may be kept
	// without a copy (set by the reader, not by decodeEnvelope).
	owned bool
}

// envelopeSize returns the encoded size of an envelope without the length prefix.
func envelopeSize(typLen, payloadLen int, flags, corr, timeout uint64) int {
	n := 1 + protowire.SizeBytes(typLen) +
		1 + protowire.SizeBytes(len(ID{})) +
		1 + protowire.SizeBytes(payloadLen) +
		1 + 8
	if flags != 0 {
		n += 1 + protowire.SizeVarint(flags)
	}
	if corr != 0 {
		n += 1 + protowire.SizeVarint(corr)
	}
	if timeout != 0 {
		n += 1 + protowire.SizeVarint(timeout)
	}
	return n
}

// appendFrame appends the length-prefixed encoding of an envelope to dst.
// typ is passed separately as a string to avoid converting it per message.
func appendFrame(dst []byte, typ string, id *ID, payload []byte, sent int64, flags, corr, timeout uint64) []byte {
	size := envelopeSize(len(typ), len(payload), flags, corr, timeout)
	dst = protowire.AppendVarint(dst, uint64(size))
	dst = protowire.AppendTag(dst, fieldSent, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, uint64(sent))
	dst = protowire.AppendTag(dst, fieldType, protowire.BytesType)
	dst = protowire.AppendString(dst, typ)
	dst = protowire.AppendTag(dst, fieldID, protowire.BytesType)
	dst = protowire.AppendBytes(dst, id[:])
	if flags != 0 {
		dst = protowire.AppendTag(dst, fieldFlags, protowire.VarintType)
		dst = protowire.AppendVarint(dst, flags)
	}
	if corr != 0 {
		dst = protowire.AppendTag(dst, fieldCorr, protowire.VarintType)
		dst = protowire.AppendVarint(dst, corr)
	}
	if timeout != 0 {
		dst = protowire.AppendTag(dst, fieldTimeout, protowire.VarintType)
		dst = protowire.AppendVarint(dst, timeout)
	}
	dst = protowire.AppendTag(dst, fieldPayload, protowire.BytesType)
	dst = protowire.AppendBytes(dst, payload)
	return dst
}

// maxFrameHeader bounds the bytes before the payload of a frame appendFrame
// writes: sent (1+8), type (2+64), id (2+16), flags, corr and timeout
// (3*(1+10)), the payload's tag and length (1+10).
const maxFrameHeader = 9 + 66 + 18 + 33 + 11

// frameTooLargeError is the error of a frame whose length prefix is over
// the limit. It wraps errFrameTooLarge and holds what its header says, when
// it could be read: a response's flags and corr, and the payload's length.
type frameTooLargeError struct {
	size, limit int
	flags, corr uint64
	payload     int // -1: unknown
}

func (e *frameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds limit of %d", e.size, e.limit)
}

func (e *frameTooLargeError) Unwrap() error { return errFrameTooLarge }

// decodeHeader reads the fields before the payload of a frame's first bytes
// b (as appendFrame orders them) into e.
func (e *frameTooLargeError) decodeHeader(b []byte) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch {
		case num == fieldPayload && typ == protowire.BytesType:
			if v, n := protowire.ConsumeVarint(b); n > 0 && v <= uint64(e.size) {
				e.payload = int(v)
			}
			return
		case (num == fieldFlags || num == fieldCorr) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return
			}
			if num == fieldFlags {
				e.flags = v
			} else {
				e.corr = v
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
			b = b[n:]
		}
	}
}

// stampSent overwrites the sent field of one frame produced by appendFrame.
func stampSent(frame []byte, sent int64) {
	_, n := protowire.ConsumeVarint(frame)
	binary.LittleEndian.PutUint64(frame[n+1:], uint64(sent))
}

// decodeEnvelope parses one frame body (without its length prefix) into e.
// e.typ and e.payload alias b. It validates what the rest of the package
// relies on: a valid type name, a 16-byte id, known flag combinations and a
// correlation id on requests and responses.
func decodeEnvelope(b []byte, e *envelope) error {
	*e = envelope{}
	var haveType, haveID bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("decode envelope: field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldType && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("decode envelope: type: %w", protowire.ParseError(n))
			}
			e.typ, haveType, b = v, true, b[n:]
		case num == fieldID && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("decode envelope: id: %w", protowire.ParseError(n))
			}
			if len(v) != len(e.id) {
				return fmt.Errorf("decode envelope: id is %d bytes, want %d", len(v), len(e.id))
			}
			copy(e.id[:], v)
			haveID, b = true, b[n:]
		case num == fieldPayload && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("decode envelope: payload: %w", protowire.ParseError(n))
			}
			e.payload, b = v, b[n:]
		case num == fieldSent && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return fmt.Errorf("decode envelope: sent: %w", protowire.ParseError(n))
			}
			e.sent, b = int64(v), b[n:]
		case (num == fieldFlags || num == fieldCorr || num == fieldTimeout) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("decode envelope: field %d: %w", num, protowire.ParseError(n))
			}
			switch num {
			case fieldFlags:
				e.flags = v
			case fieldCorr:
				e.corr = v
			default:
				e.timeout = v
			}
			b = b[n:]
		case num <= fieldTimeout:
			return fmt.Errorf("decode envelope: field %d has wire type %d, not the expected one", num, typ)
		default: // unknown field from a later version: skip it
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("decode envelope: unknown field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if !haveType || !validTypeBytes(e.typ) {
		return fmt.Errorf("decode envelope: missing or invalid type %q (want 1-%d of [A-Za-z0-9._/-])", truncate(e.typ), MaxTypeLen)
	}
	if !haveID {
		return errors.New("decode envelope: missing id")
	}
	if e.flags&^knownFlags != 0 {
		return fmt.Errorf("decode envelope: unknown flags %#x", e.flags)
	}
	req, resp := e.flags&flagRequest != 0, e.flags&flagResponse != 0
	switch {
	case req && resp:
		return errors.New("decode envelope: both request and response flags set")
	case e.flags&flagError != 0 && !resp:
		return errors.New("decode envelope: error flag without response flag")
	case (req || resp) && e.corr == 0:
		return errors.New("decode envelope: request or response without correlation id")
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// frameReader reads length-prefixed frames. The length prefix is checked
// against max before any buffer is grown, and a frame's buffer grows only as
// its bytes arrive: the first base bytes of a frame are read into one reused
// buffer of base bytes; once that is full, a longer frame moves to a buffer
// of its own, twice as big, which doubles again (capped at the declared
// length) each time it is full. A peer that declares a huge frame and sends
// little of it therefore makes us allocate at most twice what it sent.
//
// Every byte of an own buffer is first reserved through reserve (the
// stream's resource-manager scope); a refused reservation ends the frame
// with an error wrapping errFrameMemory. The reservation is held until
// release: the caller calls it once the frame has been handed off (its
// payload copied, or the buffer given to the Message it became, which is
// then accounted elsewhere: a subscription's byte bound, or a handler's
// payload budget).
//
// A frame with a buffer of its own must also arrive in time: if deadline
// is set, a timer of deadline(size) starts when the frame outgrows the base
// buffer, and if the frame is not complete when it fires, it calls expire
// (which resets the stream, ending the read) and next fails with an error
// wrapping errSlowFrame. Otherwise a peer could hold reserved memory forever
// by withholding a frame's last byte: msg streams have no read deadline.
type frameReader struct {
	r    *bufio.Reader
	max  int
	base int
	buf  []byte // reused buffer for frames up to base bytes
	own  bool   // the last frame was read into a buffer of its own

	reserve   func(n int) error // nil: no accounting
	unreserve func(n int)
	reserved  int           // bytes reserved for the current own buffer
	held      *atomic.Int64 // if set, counts bytes of own buffers not yet released

	deadline func(size int) time.Duration // nil: frames may take forever
	expire   func()                       // called by the timer, from its own goroutine
}

func newFrameReader(r io.Reader, max, bufSize int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, bufSize), max: max, base: keepFrameBuf}
}

// next returns the next frame body. It stays valid until the next call; if
// ownBuffer then reports true, the caller may keep it (after release).
func (fr *frameReader) next() ([]byte, error) {
	fr.release()
	fr.own = false
	n, err := binary.ReadUvarint(fr.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF // clean end between frames
		}
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	if n > uint64(fr.max) {
		// The part of its header already buffered (the sender writes it
		// with the length, so it has come with it) tells which request an
		// oversized reply answers. Nothing more is waited for: a hostile
		// peer's bare length prefix is refused at once.
		e := &frameTooLargeError{size: int(min(n, 1<<62)), limit: fr.max, payload: -1}
		hdr, _ := fr.r.Peek(min(fr.r.Buffered(), int(min(n, maxFrameHeader))))
		e.decodeHeader(hdr)
		return nil, e
	}
	size := int(n)
	if cap(fr.buf) < fr.base {
		fr.buf = make([]byte, fr.base)
	}
	var w *frameWatch
	buf, err := fr.body(size, &w)
	if w.stop() {
		return nil, fmt.Errorf("frame of %d bytes not complete after %s: %w", size, w.limit, errSlowFrame)
	}
	return buf, err
}

// body reads a frame body of size bytes. Up to base bytes go to the reused
// buffer; only once it is full does the frame get a buffer of its own,
// twice as big, and so on. The frame's completion timer, if any, starts
// then; *w is set to it and the caller stops it.
func (fr *frameReader) body(size int, w **frameWatch) ([]byte, error) {
	buf := fr.buf[:0:min(size, fr.base)]
	owned := 0
	for len(buf) < size {
		if len(buf) == cap(buf) {
			if *w == nil && fr.deadline != nil {
				*w = startWatch(fr.deadline(size), fr.expire)
			}
			grown := min(size, 2*cap(buf))
			if err := fr.grow(grown - owned); err != nil {
				return nil, fmt.Errorf("frame of %d bytes, %d read: %w", size, len(buf), err)
			}
			next := make([]byte, len(buf), grown)
			copy(next, buf)
			buf, owned, fr.own = next, grown, true
		}
		k, err := io.ReadFull(fr.r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, bodyErr(size, err)
		}
	}
	return buf, nil
}

// frameWatch is the completion timer of one frame.
type frameWatch struct {
	limit time.Duration
	t     *time.Timer
	fired chan struct{} // closed once expire has returned
}

func startWatch(limit time.Duration, expire func()) *frameWatch {
	w := &frameWatch{limit: limit, fired: make(chan struct{})}
	w.t = time.AfterFunc(limit, func() {
		defer close(w.fired)
		expire()
	})
	return w
}

// stop stops the timer and reports whether it had fired; it then waits for
// expire to return, so no goroutine of the timer outlives the read. A nil
// watch did not fire.
func (w *frameWatch) stop() bool {
	if w == nil || w.t.Stop() {
		return false
	}
	<-w.fired
	return true
}

// grow accounts n more bytes of the current own buffer.
func (fr *frameReader) grow(n int) error {
	if fr.reserve != nil {
		if err := fr.reserve(n); err != nil {
			return fmt.Errorf("%w: %w", errFrameMemory, err)
		}
	}
	fr.reserved += n
	if fr.held != nil {
		fr.held.Add(int64(n))
	}
	return nil
}

// release gives back the reservation of the current own buffer, if any. It
// is idempotent; next calls it too.
func (fr *frameReader) release() {
	if fr.reserved == 0 {
		return
	}
	if fr.unreserve != nil {
		fr.unreserve(fr.reserved)
	}
	if fr.held != nil {
		fr.held.Add(-int64(fr.reserved))
	}
	fr.reserved = 0
}

// ownBuffer reports whether the last frame returned by next has a buffer of
// its own, which the caller may keep instead of copying from.
func (fr *frameReader) ownBuffer() bool { return fr.own }

func bodyErr(size int, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read frame body of %d bytes: %w", size, err)
}

// keepFrameBuf is the size of the reusable frame buffer; larger frames get a
// buffer of their own that grows as the frame arrives.
const keepFrameBuf = 64 << 10

// buffered reports whether more input is already buffered (no syscall needed).
func (fr *frameReader) buffered() bool { return fr.r.Buffered() > 0 }
