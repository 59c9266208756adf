package msg

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxTypeLen is the longest accepted message type name.
const MaxTypeLen = 64

// OtherType is the statistics and metrics bucket for messages whose type has no
// local subscriber, handler or local Send. Remote peers cannot create new
// series; everything they invent is counted here. It is not a valid type name,
// so it never collides with a real one.
const OtherType = "(other)"

// ID identifies a message. Generated IDs are 8 random bytes chosen when the
// Service starts followed by a 64-bit big-endian counter, so they are unique
// per sender across restarts. Callers may set their own (SendOptions.ID) to
// make retries idempotent for Dedup subscribers.
type ID [16]byte

// String returns the ID as 32 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID (meaning "generate one" in SendOptions).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the ID as hex (used by encoding/json).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses 32 hex digits.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses a message ID written as 32 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("msg: parse id %q: want %d hex digits, got %d characters", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("msg: parse id %q: %w", s, err)
	}
	return id, nil
}

// Message is one received direct message (or a reply to a Request).
// A Message delivered to several subscribers is shared between them:
// treat it, and its Payload, as read-only.
type Message struct {
	Type string `json:"type"`
	ID   ID     `json:"id"`
	// From is the remote peer of the stream the message arrived on; it is
	// never taken from the payload.
	From    peer.ID `json:"from"`
	Payload []byte  `json:"payload"`
	// Time is when this node read the message off the stream (local clock).
	Time time.Time `json:"time"`
	// Sent is when the sender's writer took it off the send queue, by the
	// sender's clock (untrusted).
	Sent time.Time `json:"sent"`
}

// Priority orders a peer's send queue. The zero value is Normal.
//
// The per-peer writer serves the three queues by weighted round robin,
// High:Normal:Low = 8:4:1 messages per round: when all three are backlogged
// High gets 8/13 of the messages, Normal 4/13 and Low 1/13, so High goes first
// but Low is never starved. An idle class gives its share to the others.
type Priority int

// Priorities, from the zero value Normal.
const (
	Normal Priority = iota
	High
	Low
)

const numPriorities = 3

// Weighted round robin: messages per round for each class, served in the order
// High, Normal, Low.
const (
	weightHigh   = 8
	weightNormal = 4
	weightLow    = 1
)

// roundOrder returns the i-th class served in a round and its weight.
func roundOrder(i int) (Priority, int) {
	switch i {
	case 0:
		return High, weightHigh
	case 1:
		return Normal, weightNormal
	}
	return Low, weightLow
}

func (p Priority) String() string {
	switch p {
	case High:
		return "high"
	case Normal:
		return "normal"
	case Low:
		return "low"
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

func (p Priority) valid() bool { return p >= Normal && p <= Low }

// MarshalText writes the priority name (used by encoding/json).
func (p Priority) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("msg: invalid priority %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a priority name; see ParsePriority.
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePriority parses "high", "normal" or "low" (case-insensitive).
// The empty string means Normal.
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "high":
		return High, nil
	case "normal", "":
		return Normal, nil
	case "low":
		return Low, nil
	}
	return 0, kindf(ErrInvalid, "msg: parse priority %q: want one of high, normal, low", s)
}

// Policy says what a subscription does when its buffer is full. The zero value
// is Block (lossless).
type Policy int

const (
	// Block makes the stream reader wait until the subscriber has room: the
	// sender's stream stalls (yamux flow control), its queue fills and its Send
	// blocks. Nothing is lost, but one slow Block subscriber stalls every
	// message arriving from that peer.
	Block Policy = iota
	// DropOldest evicts the oldest queued message to make room for the new one.
	DropOldest
	// DropNewest discards the arriving message.
	DropNewest
)

func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

func (p Policy) valid() bool { return p >= Block && p <= DropNewest }

// MarshalText writes the policy name (used by encoding/json).
func (p Policy) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("msg: invalid policy %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a policy name; see ParsePolicy.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePolicy parses "block", "drop-oldest" or "drop-newest" (case-insensitive,
// '_' accepted for '-'). The empty string means Block.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-") {
	case "block", "":
		return Block, nil
	case "drop-oldest", "dropoldest":
		return DropOldest, nil
	case "drop-newest", "dropnewest":
		return DropNewest, nil
	}
	return 0, kindf(ErrInvalid, "msg: parse policy %q: want one of block, drop-oldest, drop-newest", s)
}

// ValidateType checks a message type name: 1 to 64 characters of
// [A-Za-z0-9._/-] (underscore allowed too). The error wraps ErrInvalid and
// says what is wrong; it has no "msg:" prefix, so callers add theirs.
func ValidateType(typ string) error {
	if err := checkName(typ, MaxTypeLen, true); err != nil {
		return kindf(ErrInvalid, "bad message type %q: expected 1 to %d characters of A-Za-z0-9._/- (%v)", typ, MaxTypeLen, err)
	}
	return nil
}

// validTypeBytes is ValidateType for the receive path (no allocation).
func validTypeBytes(b []byte) bool {
	if len(b) == 0 || len(b) > MaxTypeLen {
		return false
	}
	for _, c := range b {
		if !nameChar(c, true) {
			return false
		}
	}
	return true
}

func checkName(s string, maxLen int, slash bool) error {
	if s == "" {
		return fmt.Errorf("empty; want 1-%d characters", maxLen)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%d characters; want at most %d", len(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i], slash) {
			set := "[A-Za-z0-9._-]"
			if slash {
				set = "[A-Za-z0-9._/-]"
			}
			r, _ := utf8.DecodeRuneInString(s[i:]) // the character, not its first byte
			return fmt.Errorf("character %q at offset %d; want only %s", r, i, set)
		}
	}
	return nil
}

func nameChar(c byte, slash bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '.', c == '_', c == '-':
		return true
	case c == '/':
		return slash
	}
	return false
}
