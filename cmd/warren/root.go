package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
)

// env carries the CLI's streams and global flags to every command.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	repo           string
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "warren",
		Short: "A peer-to-peer node: typed messages, broadcast topics and TCP/UDP tunnels over libp2p",
		Long: `warren joins a libp2p network under a persistent identity kept in its repo
(--repo, else $WARREN_REPO, else ~/.warren). Run 'warren daemon' to start a node
(it creates the repo on first run); the other commands drive the running daemon
through its local control API.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.repo, "repo", "", "repo directory (default $WARREN_REPO, else ~/.warren)")
	root.AddCommand(
		initCmd(e), daemonCmd(e), idCmd(e), peersCmd(e), connectCmd(e), disconnectCmd(e),
		pingCmd(e), versionCmd(e), statusCmd(e),
	)
	addCapabilityCommands(root, e)
	return root
}

// repoDir resolves the repo directory from --repo, $WARREN_REPO or ~/.warren.
func (e *env) repoDir() (string, error) { return config.DefaultDir(e.repo) }

// client connects to the daemon running on the repo.
func (e *env) client() (*client.Client, error) {
	dir, err := e.repoDir()
	if err != nil {
		return nil, err
	}
	return client.ForRepo(dir)
}

// show gets a client, makes one call with it, closes it and prints the
// answer: as indented JSON with asJSON, otherwise with text. The daemon
// validates the call; its error is printed as it says it.
func show[T any](e *env, asJSON bool, call func(*client.Client) (T, error), text func(T) error) error {
	cl, err := e.client()
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	v, err := call(cl)
	if err != nil {
		return err
	}
	if asJSON {
		return e.printJSON(v)
	}
	return text(v)
}

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) printf(format string, a ...any) { fmt.Fprintf(e.stdout, format, a...) }

// call gets a client, makes one call with it that prints its own answer,
// and closes the client.
func call(e *env, do func(*client.Client) error) error {
	return show(e, false, func(cl *client.Client) (struct{}, error) { return struct{}{}, do(cl) },
		func(struct{}) error { return nil })
}
