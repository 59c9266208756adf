package warren_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/msg"
)

func newNode(t *testing.T, repoDir string) *warren.Node {
	t.Helper()
	cfg, _ := config.ForProfile(config.ProfileTest)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := warren.New(context.Background(), warren.Options{Config: cfg, Key: key, RepoDir: repoDir})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLibraryNodeEndToEnd is what an application does in-process: two nodes,
// connect, exchange a message, close, and nothing is left running.
func TestLibraryNodeEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newNode(t, ""), newNode(t, t.TempDir())

	sub, err := a.Msg.Subscribe("greeting", msg.SubscribeOptions{Buffer: 8, Policy: msg.Block})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.Msg.Send(ctx, a.ID(), "greeting", []byte("hello"), msg.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != "hello" || m.From != b.ID() {
		t.Fatalf("got %q from %s", m.Payload, m.From)
	}
	if rtts, err := b.Ping(ctx, a.ID(), 1); err != nil || len(rtts) != 1 {
		t.Fatalf("ping: %v %v", rtts, err)
	}
	sub.Close()
	for _, n := range []*warren.Node{a, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil { // idempotent
			t.Fatal(err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cfg := config.Default()
	if _, err := warren.New(context.Background(), warren.Options{Config: cfg}); err == nil {
		t.Fatal("no key accepted")
	}
	cfg.Network = ""
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	if _, err := warren.New(context.Background(), warren.Options{Config: cfg, Key: key}); err == nil {
		t.Fatal("empty network accepted")
	}
}
