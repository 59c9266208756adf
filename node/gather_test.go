package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// securePair runs a TLS handshake over loopback TCP between a gathering
// client and a server, and returns both ends and the client's socket.
func securePair(t *testing.T) (client, server sec.SecureConn, sock *countingConn) {
	t.Helper()
	newT := func() (*gatherTLS, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := newGatherTLS(libp2ptls.ID, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return tr, id
	}
	ct, _ := newT()
	st, sid := newT()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sraw, okAccept := <-accepted
	if !okAccept {
		t.Fatal("accept failed")
	}
	sock = &countingConn{Conn: raw}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		c   sec.SecureConn
		err error
	}
	sdone := make(chan res, 1)
	go func() {
		c, err := st.SecureInbound(ctx, sraw, "")
		sdone <- res{c, err}
	}()
	client, err = ct.SecureOutbound(ctx, sock, sid)
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	r := <-sdone
	if r.err != nil {
		t.Fatalf("server handshake: %v", r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c, sock
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestGatherTLSOneSocketWritePerWrite(t *testing.T) {
	client, server, sock := securePair(t)
	for _, size := range []int{100, 16 << 10, 16<<10 + 1, 64<<10 + 12, 1 << 20} {
		msg := pattern(size, byte(size))
		before := sock.writes.Load()
		got := make([]byte, size)
		readErr := make(chan error, 1)
		go func() { _, err := io.ReadFull(server, got); readErr <- err }()
		if n, err := client.Write(msg); err != nil || n != size {
			t.Fatalf("write %d bytes: n=%d err=%v", size, n, err)
		}
		if err := <-readErr; err != nil {
			t.Fatalf("read %d bytes: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: received bytes differ", size)
		}
		// 1 MiB is 64 records, and still one write to the socket.
		if w := sock.writes.Load() - before; w != 1 {
			t.Errorf("a %d-byte write took %d socket writes, want 1", size, w)
		}
	}
}

// Concurrent writers (yamux has one, but nothing here relies on it): each
// Write's bytes stay contiguous and in one piece on the wire.
func TestGatherTLSConcurrentWriters(t *testing.T) {
	client, server, _ := securePair(t)
	const writers, perWriter = 4, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				size := 1000 + (w*perWriter+i)*3001%(100<<10)
				msg := make([]byte, 8+size)
				binary.BigEndian.PutUint32(msg, uint32(size))
				binary.BigEndian.PutUint32(msg[4:], uint32(w))
				copy(msg[8:], pattern(size, byte(w)))
				if _, err := client.Write(msg); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	for range writers * perWriter {
		var hdr [8]byte
		if _, err := io.ReadFull(server, hdr[:]); err != nil {
			t.Fatalf("read header: %v", err)
		}
		size, w := binary.BigEndian.Uint32(hdr[:]), binary.BigEndian.Uint32(hdr[4:])
		body := make([]byte, size)
		if _, err := io.ReadFull(server, body); err != nil {
			t.Fatalf("read body: %v", err)
		}
		if w >= writers || !bytes.Equal(body, pattern(int(size), byte(w))) {
			t.Fatalf("message from writer %d of %d bytes arrived mixed up", w, size)
		}
	}
	wg.Wait()
}
