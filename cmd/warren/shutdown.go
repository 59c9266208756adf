package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/config"
)

func shutdownCmd(e *env) *cobra.Command {
	var wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "shutdown",
		Short: "Stop the repo's daemon (as SIGTERM would) and wait until it has exited",
		Long: `Ask the daemon on the repo to stop (POST /v1/shutdown): it stops exactly as on
SIGTERM, saving its tunnels, closing its services and removing api.json. With
--wait (the default) the command returns once the daemon's process has exited,
printing "daemon stopped"; it fails after --timeout. With no daemon running it
fails (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runShutdown(cmd.Context(), e, wait, timeout)
		},
	}
	c.Flags().BoolVar(&wait, "wait", true, "wait until the daemon's process has exited")
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the daemon to accept and exit")
	return c
}

func runShutdown(ctx context.Context, e *env, wait bool, timeout time.Duration) error {
	cl, err := e.client()
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	dir, err := e.repoDir()
	if err != nil {
		return err
	}
	// The process to wait for; read before the daemon removes its record.
	ep, err := config.ReadEndpoint(dir)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := cl.Shutdown(tctx); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return fmt.Errorf("ask the daemon to stop: %w", err)
	}
	_ = cl.Close()
	if !wait {
		e.printf("daemon stopping\n")
		return nil
	}
	for !daemonGone(dir, ep) {
		select {
		case <-tctx.Done():
			if ctx.Err() != nil {
				return errInterrupted
			}
			what := "its process"
			if ep.PID > 0 {
				what = fmt.Sprintf("its process (pid %d)", ep.PID)
			}
			return fmt.Errorf("the daemon accepted to stop but %s had not exited after %s; it may still be saving its state (wait longer with --timeout, or kill it)", what, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.printf("daemon stopped\n")
	return nil
}

// daemonGone reports whether the daemon that served ep has exited: its
// process is gone (or a zombie its parent has not reaped yet). Without a
// pid: api.json is gone and nothing listens on the socket.
func daemonGone(dir string, ep config.Endpoint) bool {
	if ep.PID > 0 {
		return !processAlive(ep.PID) || zombie(ep.PID)
	}
	if _, err := os.Stat(filepath.Join(dir, config.APIFile)); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return ep.Unix == "" || stale(ep)
}

// zombie reports whether the process has exited and waits for its parent
// to reap it (Linux: the state in /proc/<pid>/stat is Z). A daemon started
// by a program that has not waited for it yet has stopped all the same.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
