package warren_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/msg"
)

// Two in-process nodes: Options{} gives each a new key and the loopback
// test profile. One serves an application protocol of its own; they
// exchange a direct message and a request, then use that protocol.
// (README.md's library section shows this example.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, err := warren.New(ctx, warren.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := warren.New(ctx, warren.Options{Protocols: []warren.Protocol{{
		ID: "/myapp/hello/1.0.0",
		Handler: func(s network.Stream) {
			defer s.Close()
			_, _ = s.Write([]byte("hello from b"))
		},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		log.Fatal(err)
	}

	sub, err := b.Msg().Subscribe("chat", msg.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	if err := a.Msg().Send(ctx, b.ID(), "chat", []byte("hi"), msg.SendOptions{}); err != nil {
		log.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("b got %q\n", m.Payload)

	reg, err := b.Msg().Handle("echo", func(_ context.Context, m *msg.Message) ([]byte, error) {
		return m.Payload, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	reply, err := a.Msg().Request(ctx, b.ID(), "echo", []byte("ping"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("a got %q back\n", reply.Payload)

	s, err := a.Host().NewStream(ctx, b.ID(), "/myapp/hello/1.0.0")
	if err != nil {
		log.Fatal(err)
	}
	hello, err := io.ReadAll(io.LimitReader(s, 1024))
	if err != nil {
		log.Fatal(err)
	}
	_ = s.Close()
	fmt.Println(string(hello))
	// Output:
	// b got "hi"
	// a got "ping" back
	// hello from b
}
