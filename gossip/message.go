package gossip

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Message is one broadcast message as a subscriber or validator sees it.
type Message struct {
	Topic string  `json:"topic"` // topic name, without the network namespace
	From  peer.ID `json:"from"`  // author: the peer that signed and published it
	// ReceivedFrom is the peer that forwarded it to us (the author only if
	// directly connected; this host for local publishes).
	ReceivedFrom peer.ID   `json:"received_from"`
	ID           string    `json:"id"` // pubsub message ID (author + sequence number)
	Data         []byte    `json:"data"`
	Time         time.Time `json:"time"` // when this host received or published it
}

// Result is a validator's verdict.
type Result int

const (
	// Accept delivers the message and forwards it.
	Accept Result = iota
	// Reject drops the message and penalises the peer that sent it.
	Reject
	// Ignore drops the message without penalty.
	Ignore
)

// String names r.
func (r Result) String() string {
	switch r {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Validator decides whether a message on a topic is delivered and relayed.
// from is the peer that forwarded it (m.From is its author). It runs on
// pubsub's validation goroutines, for received and for locally published
// messages; it must be quick and must not modify m.
type Validator func(ctx context.Context, from peer.ID, m *Message) Result

// newMessage converts a pubsub message on the topic named name. Data is
// copied so that subscribers of one topic never share a buffer.
func newMessage(name string, pm *pubsub.Message, at time.Time) *Message {
	return &Message{
		Topic:        name,
		From:         pm.GetFrom(),
		ReceivedFrom: pm.ReceivedFrom,
		ID:           messageID(pm),
		Data:         append([]byte(nil), pm.GetData()...),
		Time:         at,
	}
}

// messageID renders pubsub's message ID printably. With the default ID
// function (author + 8-byte sequence number) that is "<author>/<seqno>";
// any other form is hex-encoded.
func messageID(pm *pubsub.Message) string {
	seq := pm.GetSeqno()
	if pm.ID == string(pm.Message.GetFrom())+string(seq) && len(seq) == 8 {
		return fmt.Sprintf("%s/%d", pm.GetFrom(), binary.BigEndian.Uint64(seq))
	}
	return hex.EncodeToString([]byte(pm.ID))
}
