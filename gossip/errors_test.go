package gossip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Errors carry a kind callers branch on, and one "gossip:" prefix.
func TestTypedErrorsAndTopicClose(t *testing.T) {
	_, hs := newMocknet(t, 1)
	s := newService(t, hs[0], Options{MaxMessageSize: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	once := func(what string, err, kind error) {
		t.Helper()
		if !errors.Is(err, kind) || strings.Count(err.Error(), "gossip:") > 1 {
			t.Errorf("%s: %v; expected %v with one prefix", what, err, kind)
		}
	}
	_, err := s.Join("bad name")
	once("join", err, ErrInvalidTopic)
	once("publish", s.Publish(ctx, "bad name", nil), ErrInvalidTopic)
	_, err = s.Subscribe("bad name", SubscribeOptions{})
	once("subscribe", err, ErrInvalidTopic)
	once("validate", ValidateTopic(""), ErrInvalidTopic)
	once("too large", s.Publish(ctx, "t", make([]byte, 11)), ErrTooLarge)
	once("nil validator", s.RegisterValidator("t", nil), ErrInvalid)

	topic, err := s.Join("t")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe(SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	once("close in use", topic.Close(), ErrInUse)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := topic.Close(); err != nil {
		t.Fatal(err)
	}
	if err := topic.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if len(s.Topics()) != 0 {
		t.Fatal("topic listed after Close")
	}
	_, err = topic.Subscribe(SubscribeOptions{})
	once("subscribe to a closed topic", err, ErrLeft)
	again, err := s.Join("t")
	if err != nil || again == topic {
		t.Fatalf("join after Close = %p, %v; expected a new topic", again, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Join("u")
	once("join after close", err, ErrClosed)
}
