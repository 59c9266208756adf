package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/api"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/webui"
)

func daemonCmd(e *env) *cobra.Command {
	var profile, level, format string
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run a warren node (creates the repo on first run)",
		Long: `Run a warren node in the foreground until SIGINT or SIGTERM, or until
'warren shutdown' asks it to stop (the same graceful stop). On first run the
repo is created with --init-profile. The control API listens on the repo's
api.sock (and on api.tcp when configured); other warren commands find it there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), e, profile, level, format)
		},
	}
	c.Flags().StringVar(&profile, "init-profile", config.ProfileDefault, "profile of the repo created on first run: "+strings.Join(config.Profiles(), " or "))
	c.Flags().StringVar(&level, "log-level", "", "override log.level: debug, info, warn or error")
	c.Flags().StringVar(&format, "log-format", "", "override log.format: text or json")
	return c
}

func runDaemon(ctx context.Context, e *env, profile, level, format string) error {
	dir, err := e.repoDir()
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(dir); err == nil && len(abs) > api.MaxRepoPathForSocket {
		return fmt.Errorf("repo path %s is %d bytes, too long for its API's unix socket (at most %d bytes: a unix socket path "+
			"is limited to %d); use a shorter --repo (e.g. under /tmp), or a symbolic link to this directory", abs, len(abs), api.MaxRepoPathForSocket, api.MaxUnixSocketPath)
	}
	var repo *config.Repo
	if config.Exists(dir) {
		repo, err = config.Open(dir)
	} else {
		repo, err = config.Init(dir, profile)
		if err == nil {
			fmt.Fprintf(e.stdout, "initialized warren repo at %s (profile %s)\n", dir, profile)
		}
	}
	if err != nil {
		return err
	}
	if level != "" {
		repo.Config.Log.Level = level
	}
	if format != "" {
		repo.Config.Log.Format = format
	}
	log, err := newLogger(repo.Config.Log, e.stderr)
	if err != nil {
		return err
	}
	if err := repo.Lock(); err != nil {
		return err
	}
	defer repo.Unlock()
	// The lock alone does not prove this repo free: a deleted repo.lock
	// lets a second flock succeed. Ask whoever serves api.sock first, and
	// only then clear what a dead daemon left.
	if err := refuseLiveDaemon(ctx, repo); err != nil {
		return err
	}
	repo.RemoveStaleEndpoint()
	raiseFDLimit(log)

	n, err := warren.Open(ctx, repo, log)
	if err != nil {
		return err
	}
	defer n.Close()

	// POST /v1/shutdown (warren shutdown) ends the wait below like a
	// signal: one way down for both.
	shutdown := make(chan struct{})
	srv := api.NewServer(n, api.ServerOptions{Logger: log.With("component", "api"),
		Shutdown: func() { close(shutdown) }}) // the server calls it at most once
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	}()
	ep := config.Endpoint{Unix: repo.Path(config.APISocket)}
	if err := srv.ServeUnix(ep.Unix); err != nil {
		return err
	}
	// The dashboard needs the TCP API: without api.tcp it gets a loopback
	// port of the kernel's choosing, recorded in api.json like any other.
	tcp := repo.Config.API.TCP
	if tcp == "" && repo.Config.API.Dashboard {
		tcp = "127.0.0.1:0"
	}
	if tcp != "" {
		tok, err := repo.Token()
		if err != nil {
			return err
		}
		srv.SetToken(tok)
		if ep.TCP, err = srv.ServeTCP(tcp); err != nil {
			return err
		}
	}
	ep.PID = pid()
	// The endpoint record goes first out and last in: while it exists the
	// API answers.
	if err := repo.WriteEndpoint(ep); err != nil {
		return err
	}
	defer repo.RemoveEndpoint()

	fmt.Fprintf(e.stdout, "warren daemon is running\npeer ID: %s\n", n.ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(e.stdout, "listening on %s\n", a)
	}
	fmt.Fprintf(e.stdout, "API: unix %s", ep.Unix)
	if ep.TCP != "" {
		fmt.Fprintf(e.stdout, ", tcp %s (token in %s)", ep.TCP, repo.Path(config.TokenFile))
	}
	fmt.Fprintln(e.stdout)
	if ep.TCP != "" && repo.Config.API.Dashboard {
		fmt.Fprintf(e.stdout, "dashboard: %s ('warren webui' prints it with the login token)\n", webui.URL(ep.TCP, ""))
	}
	log.Info("daemon ready", "repo", repo.Dir, "peer", n.ID())

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-shutdown:
		log.Info("shutting down", "reason", "POST /v1/shutdown")
	}
	repo.RemoveEndpoint()
	return nil
}

// liveProbeTimeout bounds the wait for another daemon's /v1/health.
const liveProbeTimeout = time.Second

// refuseLiveDaemon returns an error if something accepts connections on the
// repo's API socket (or the one api.json names): another daemon serving this
// repo, whatever happened to repo.lock. A socket nobody listens on is stale.
func refuseLiveDaemon(ctx context.Context, repo *config.Repo) error {
	socks := []string{repo.Path(config.APISocket)}
	ep, err := config.ReadEndpoint(repo.Dir)
	switch {
	case errors.Is(err, config.ErrUnsafeRepo):
		return err
	case err == nil && ep.Unix != "" && ep.Unix != socks[0]:
		socks = append(socks, ep.Unix)
	}
	pid := "pid unknown"
	if err == nil && ep.PID > 0 {
		pid = fmt.Sprintf("pid %d", ep.PID)
	}
	for _, sock := range socks {
		if st, err := os.Lstat(sock); err != nil || st.Mode().Type() != fs.ModeSocket {
			continue // nothing there, or not a socket: nothing to ask
		}
		pctx, cancel := context.WithTimeout(ctx, liveProbeTimeout)
		conn, err := (&net.Dialer{}).DialContext(pctx, "unix", sock)
		if err != nil {
			cancel()
			continue // refused: a socket left by a dead daemon
		}
		_ = conn.Close()
		cl, err := client.New(client.Endpoint{Unix: sock}, "")
		if err != nil {
			cancel()
			return err
		}
		_, herr := cl.Health(pctx)
		_ = cl.Close()
		cancel()
		if herr != nil {
			return fmt.Errorf("something listens on %s but did not answer /v1/health within %s (%v); stop it before starting a daemon on repo %s", sock, liveProbeTimeout, herr, repo.Dir)
		}
		return fmt.Errorf("another daemon (%s) is serving this repo at %s; stop it first (repo.lock alone did not stop this start: was it deleted?)", pid, sock)
	}
	// Its socket may be gone while its TCP listener is not. A TCP port can be
	// reused by anyone once its owner died, so ask only a process that lives.
	if err == nil && ep.TCP != "" && ep.PID > 0 && processAlive(ep.PID) {
		pctx, cancel := context.WithTimeout(ctx, liveProbeTimeout)
		conn, derr := (&net.Dialer{}).DialContext(pctx, "tcp", ep.TCP)
		cancel()
		if derr == nil {
			_ = conn.Close()
			return fmt.Errorf("another daemon (%s) is serving this repo at tcp %s; stop it first (remove %s if that process is not a warren daemon)", pid, ep.TCP, repo.Path(config.APIFile))
		}
	}
	return nil
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	lvl, err := config.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: expected text or json", c.Format)
}

func peerIDOf(r *config.Repo) (peer.ID, error) {
	id, err := peer.IDFromPrivateKey(r.Key)
	if err != nil {
		return "", fmt.Errorf("derive peer ID from %s: %w", r.Path(config.KeyFile), err)
	}
	return id, nil
}

// raiseFDLimit lifts the soft limit on open files to the hard limit: every
// tunnelled connection holds a socket on each side.
func raiseFDLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("could not raise the open-file limit", "soft", old, "hard", lim.Max, "err", err)
		return
	}
	log.Debug("raised the open-file limit", "from", old, "to", lim.Cur)
}
