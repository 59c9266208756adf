package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/warren-p2p/warren/config"
)

func probeRepo(t *testing.T) *config.Repo {
	t.Helper()
	dir, err := os.MkdirTemp("", "wd") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r, err := config.Init(dir+"/r", config.ProfileTest)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRefuseLiveDaemonStaleSocket(t *testing.T) {
	r := probeRepo(t)
	if err := refuseLiveDaemon(context.Background(), r); err != nil {
		t.Fatalf("empty repo: %v", err)
	}
	// A socket nobody listens on any more, as a SIGKILLed daemon leaves it.
	l, err := net.Listen("unix", r.Path(config.APISocket))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := r.WriteEndpoint(config.Endpoint{Unix: r.Path(config.APISocket), PID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := refuseLiveDaemon(context.Background(), r); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
}

func TestRefuseLiveDaemonSilentListener(t *testing.T) {
	r := probeRepo(t)
	l, err := net.Listen("unix", r.Path(config.APISocket))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() { // accept and say nothing
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	err = refuseLiveDaemon(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "did not answer /v1/health") {
		t.Fatalf("silent listener: %v", err)
	}
	l.Close()
	<-done
}

func TestRefuseLiveDaemonTCPOnly(t *testing.T) {
	r := probeRepo(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// This process is alive and listens on TCP; its socket is gone.
	if err := r.WriteEndpoint(config.Endpoint{Unix: r.Path(config.APISocket), TCP: l.Addr().String(), PID: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	err = refuseLiveDaemon(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "is serving this repo at tcp "+l.Addr().String()) {
		t.Fatalf("live TCP listener: %v", err)
	}
	// A dead pid's TCP address is not asked: the port may belong to anyone now.
	if err := r.WriteEndpoint(config.Endpoint{TCP: l.Addr().String(), PID: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := refuseLiveDaemon(context.Background(), r); err != nil {
		t.Fatalf("dead pid: %v", err)
	}
}
