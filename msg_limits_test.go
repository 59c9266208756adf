package warren_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warren-p2p/warren/msg"
)

// An honest peer's concurrent large requests, more of them than the peer's
// frame memory in the resource manager holds, all get answered with the
// default config and the real resource-manager limits: the payloads held by
// running handlers must not use up the memory the peer's next frame needs
// (which reset the stream and failed every pending request).
func TestConcurrentLargeRequests(t *testing.T) {
	for _, c := range []struct{ size, n int }{{2 << 20, 10}, {4 << 20, 6}} {
		a, b := newNode(t, ""), newNode(t, "")
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.Msg().Handle("slow", func(ctx context.Context, m *msg.Message) ([]byte, error) {
			time.Sleep(time.Second)
			return []byte("ok"), nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := b.Connect(ctx, a.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, c.size)
		var wg sync.WaitGroup
		errs := make([]error, c.n)
		for i := range errs {
			wg.Go(func() { _, errs[i] = b.Msg().Request(ctx, a.ID(), "slow", payload) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				st := a.Msg().Stats()
				t.Fatalf("%d requests of %d B: request %d: %v (refused_memory=%d)", c.n, c.size, i, err, st.RefusedMemory)
			}
		}
		if st := a.Msg().Stats(); st.RefusedMemory != 0 || st.InboundFrameBytes != 0 {
			t.Fatalf("refused_memory=%d inbound_frame_bytes=%d, want 0 and 0", st.RefusedMemory, st.InboundFrameBytes)
		}
	}
}
