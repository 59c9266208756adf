package msg

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func BenchmarkEncode(b *testing.B) {
	id := ID{1}
	payload := make([]byte, 100)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		buf = appendFrame(buf[:0], "bench/type", &id, payload, 1, 0, 0, 0)
	}
}

func BenchmarkDecode(b *testing.B) {
	id := ID{1}
	frame := appendFrame(nil, "bench/type", &id, make([]byte, 100), 1, 0, 0, 0)
	_, n := protowire.ConsumeVarint(frame)
	body := frame[n:]
	var e envelope
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		if err := decodeEnvelope(body, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSub runs the dispatcher alone: one producer goroutine delivering to
// one subscription, the benchmark goroutine consuming.
func benchSub(b *testing.B, batch bool) {
	s := &Service{}
	s.log = discardLogger()
	ts := &typeState{name: "t"}
	sub := newSubscription(s, ts, 1, SubscribeOptions{Buffer: 4096, Policy: Block})
	m := &Message{Type: "t"}
	go func() {
		for i := 0; i < b.N; i++ {
			sub.deliver(m)
		}
	}()
	ctx := context.Background()
	buf := make([]*Message, 0, 512)
	start := time.Now()
	b.ResetTimer()
	for got := 0; got < b.N; {
		if batch {
			out, err := sub.NextBatch(ctx, buf[:0])
			if err != nil {
				b.Fatal(err)
			}
			got += len(out)
		} else {
			if _, err := sub.Next(ctx); err != nil {
				b.Fatal(err)
			}
			got++
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}

func BenchmarkDispatcherNextBatch(b *testing.B) { benchSub(b, true) }
func BenchmarkDispatcherNext(b *testing.B)      { benchSub(b, false) }

// BenchmarkTwoNodes measures lossless (Block) throughput of 100-byte
// messages between two in-process hosts over loopback TCP.
func BenchmarkTwoNodes(b *testing.B) {
	a, r := pair(b, Options{})
	sub, err := r.Subscribe("bench", SubscribeOptions{Buffer: 8192, Policy: Block})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Send(ctx, r.h.ID(), "bench", nil, SendOptions{}); err != nil { // open the stream
		b.Fatal(err)
	}
	if _, err := sub.Next(ctx); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.SetBytes(100)
	b.ResetTimer()
	start := time.Now()
	go func() {
		buf := make([]*Message, 0, 1024)
		for got := 0; got < b.N; {
			out, err := sub.NextBatch(ctx, buf[:0])
			if err != nil {
				done <- err
				return
			}
			got += len(out)
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if err := a.Send(ctx, r.h.ID(), "bench", payload, SendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if d := sub.Dropped(); d != 0 {
		b.Fatalf("dropped %d", d)
	}
}
