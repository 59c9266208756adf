package msg

import (
	"runtime"
	"testing"
	"time"
)

// A large payload must not outlive its Message: delivered, read and
// dropped, it is garbage. Carved from the reader's chunk of Messages, it
// stayed reachable until the chunk's last Message was handed out, up to
// slabMsgs payloads after the subscriber had dropped them (a daemon
// delivering 1 MiB messages to a fast reader grew by ~256 MiB).
func TestLargePayloadsNotKeptByTheReader(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	connect(t, ha, hb)
	a, b := newService(t, ha, Options{MaxMessageSize: 1 << 20}), newService(t, hb, Options{MaxMessageSize: 1 << 20})
	sub, err := b.Subscribe("big", SubscribeOptions{Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n, size = 48, 1 << 20 // fewer than slabMsgs, so the reader's chunk never rolls over
	ctx := ctxT(t, 30*time.Second)
	payload := make([]byte, size)
	go func() {
		for range n {
			if a.Send(ctx, hb.ID(), "big", payload, SendOptions{}) != nil {
				return
			}
		}
	}()
	for i := range n {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m.Payload) != size {
			t.Fatalf("message %d: %d bytes, want %d", i, len(m.Payload), size)
		}
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// The test's own payload (1 MiB), the frame readers' buffers and the
	// hosts are all that should be left; 48 MiB of payloads must not be.
	if limit := uint64(16 << 20); ms.HeapAlloc > limit {
		t.Fatalf("after %d messages of %d bytes were read and dropped, the heap holds %d MiB; expected under %d MiB",
			n, size, ms.HeapAlloc>>20, limit>>20)
	}
}
