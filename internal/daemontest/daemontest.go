// Package daemontest runs the real warren binary for tests and benchmarks:
// it builds cmd/warren, starts `warren daemon` processes on repos and edits
// their config. e2e/ (through its thin harness) and bench/ share it. It
// does not import package testing, so programs may use it.
package daemontest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
)

// Build compiles github.com/warren-p2p/warren/cmd/warren into dir (with
// -race if race) and returns the binary's path. Build output goes to
// stderr.
func Build(ctx context.Context, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "warren")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "github.com/warren-p2p/warren/cmd/warren")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build warren: %w", err)
	}
	return bin, nil
}

// Options say how to start a daemon.
type Options struct {
	Bin  string   // the warren binary
	Repo string   // --repo
	Wrap []string // a command prefix that execs the daemon (ip netns exec NS)
	Args []string // after "daemon", e.g. --init-profile test
	Env  []string // added to the environment
	// Log, if set, receives the daemon's output as well (it is always kept:
	// Daemon.Output).
	Log io.Writer
	// Timeout bounds the start: the "peer ID:" line, then an answer of the
	// API. 0 means 60 s.
	Timeout time.Duration
}

// Daemon is a running `warren daemon` process.
type Daemon struct {
	Repo string
	ID   string // its peer ID, from its "peer ID:" line
	Cmd  *exec.Cmd

	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// Start starts a daemon and waits until its API answers. On error the
// process is killed; the error includes its output.
func Start(ctx context.Context, o Options) (*Daemon, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	d := &Daemon{Repo: o.Repo, done: make(chan struct{})}
	args := append(append(append([]string{}, o.Wrap...), o.Bin, "--repo", o.Repo, "daemon"), o.Args...)
	d.Cmd = exec.Command(args[0], args[1:]...)
	if len(o.Env) > 0 {
		d.Cmd.Env = append(os.Environ(), o.Env...)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	d.Cmd.Stdout, d.Cmd.Stderr = pw, pw
	if err := d.Cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start daemon on %s: %w", o.Repo, err)
	}
	pw.Close()
	ready := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.out.WriteString(line + "\n")
			d.mu.Unlock()
			if o.Log != nil {
				fmt.Fprintln(o.Log, line)
			}
			if id, found := strings.CutPrefix(line, "peer ID: "); found {
				select {
				case ready <- id:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner
	}()
	go func() {
		err := d.Cmd.Wait()
		<-read
		pr.Close()
		d.err = err
		close(d.done)
	}()
	fail := func(format string, a ...any) (*Daemon, error) {
		d.Kill()
		return nil, fmt.Errorf("daemon on %s: %s\n%s", o.Repo, fmt.Sprintf(format, a...), d.Output())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case d.ID = <-ready:
	case <-d.done:
		return fail("exited early: %v", d.err)
	case <-ctx.Done():
		return fail("did not start: %v", ctx.Err())
	}
	// "peer ID" is printed before the API line; wait for the API to answer.
	for {
		if cl, err := client.ForRepo(o.Repo); err == nil {
			_, err := cl.ID(ctx)
			cl.Close()
			if err == nil {
				return d, nil
			}
		}
		select {
		case <-d.done:
			return fail("exited before its API answered: %v", d.err)
		case <-ctx.Done():
			return fail("API never answered: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output returns everything the daemon printed so far.
func (d *Daemon) Output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// PID is the daemon's process ID (of the Wrap command, which execs it).
func (d *Daemon) PID() int { return d.Cmd.Process.Pid }

// Done is closed once the process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err is how the process exited (nil: status 0), once Done is closed; it
// blocks until then.
func (d *Daemon) Err() error {
	<-d.done
	return d.err
}

// Signal sends sig and waits (up to 20 s, then SIGKILL) for the process to
// exit, returning how it exited.
func (d *Daemon) Signal(sig syscall.Signal) error {
	if d.Cmd.Process == nil {
		return nil
	}
	_ = d.Cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return d.err
	case <-time.After(20 * time.Second):
		_ = d.Cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("daemon did not exit within 20s of %v", sig)
	}
}

// Stop ends the daemon with SIGTERM; the error says if it did not exit
// cleanly.
func (d *Daemon) Stop() error {
	if err := d.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("daemon on %s: %w", d.Repo, err)
	}
	return nil
}

// Kill ends the daemon with SIGKILL.
func (d *Daemon) Kill() { _ = d.Signal(syscall.SIGKILL) }

// EditConfigFile changes a stopped node's config.toml in repo: it parses
// it, applies edit, validates the result and writes it back with
// config.WriteFileAtomic.
func EditConfigFile(repo string, edit func(*config.Config)) error {
	path := filepath.Join(repo, config.ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s after the edit: %w", path, err)
	}
	text, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return config.WriteFileAtomic(path, text, 0o600)
}

// ReplaceConfigLines edits config.toml in repo as text: each pair is a line
// as init wrote it and the line to put in its place. A line that is not
// there is an error, so a renamed setting cannot make an edit silently
// vanish. Prefer EditConfigFile; this is for values the config package
// would refuse (tests of its errors).
func ReplaceConfigLines(repo string, pairs ...string) error {
	if len(pairs)%2 != 0 {
		return errors.New("ReplaceConfigLines: expected old, new pairs")
	}
	path := filepath.Join(repo, config.ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			return fmt.Errorf("%s has no line %q", path, pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return config.WriteFileAtomic(path, []byte(text), 0o600)
}
