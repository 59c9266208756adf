package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

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
through its local control API. docs/cli.md lists every command.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.repo, "repo", "", "repo directory (default $WARREN_REPO, else ~/.warren)")
	_ = root.MarkPersistentFlagDirname("repo")
	root.AddCommand(
		initCmd(e), daemonCmd(e), waitCmd(e), shutdownCmd(e), idCmd(e), peersCmd(e), connectCmd(e), disconnectCmd(e),
		pingCmd(e), versionCmd(e), statusCmd(e),
	)
	addCapabilityCommands(root, e)
	finishTree(root, e)
	return root
}

// usageError is a command line that does not fit the command: main prints
// it with the command's usage line.
type usageError struct {
	err   error
	usage string // "warren recv <type>"
}

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// usageLine is the command's use line without cobra's " [flags]".
func usageLine(c *cobra.Command) string {
	line := strings.TrimSuffix(c.UseLine(), " [flags]")
	if c.Annotations[groupAnnotation] != "" {
		line += " <command>"
	}
	return line
}

// groupAnnotation marks a command that only holds subcommands.
const groupAnnotation = "warren-group"

// finishTree gives every command of the tree what the CLI promises of all
// of them: an unknown subcommand is an error with a suggestion, a bad
// command line prints the usage line, and help has examples.
func finishTree(root *cobra.Command, e *env) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: err, usage: usageLine(c)}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if ex, ok := examples[c.CommandPath()]; ok && c.Example == "" {
			c.Example = ex
		}
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			group(c)
		} else if c.Args != nil {
			check := c.Args
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 && cmd.HasAvailableSubCommands() {
					if err := check(cmd, args); err != nil {
						return unknownCommand(cmd, args[0])
					}
				}
				if err := check(cmd, args); err != nil {
					return &usageError{err: err, usage: usageLine(cmd)}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	addCompletions(root, e)
}

// group makes a command that only holds subcommands answer an unknown one
// with an error (exit 1) and a suggestion, instead of its help and exit 0.
func group(c *cobra.Command) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[groupAnnotation] = "true"
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownCommand(cmd, args[0])
	}
}

func unknownCommand(cmd *cobra.Command, name string) error {
	cmd.SuggestionsMinimumDistance = 2
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	u := &usageError{err: errors.New(msg), usage: usageLine(cmd) + " (see '" + cmd.CommandPath() + " --help')"}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		u.usage = "did you mean: " + cmd.CommandPath() + " " + strings.Join(s, ", or "+cmd.CommandPath()+" ") + "?"
	}
	return u
}

// repoDir resolves the repo directory from --repo, $WARREN_REPO or ~/.warren.
func (e *env) repoDir() (string, error) { return config.DefaultDir(e.repo) }

// repoFlag is the --repo to repeat in a hint: the flag as given, else "".
func (e *env) repoFlag() string {
	if e.repo == "" {
		return ""
	}
	return "--repo " + shellQuote(e.repo) + " "
}

// shellQuote quotes s for a shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-~") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// client connects to the daemon running on the repo. With none running it
// says so, with the command that starts one on this repo; a daemon that
// died without cleaning up is told apart from one that never ran.
func (e *env) client() (*client.Client, error) {
	dir, err := e.repoDir()
	if err != nil {
		return nil, err
	}
	cl, err := client.ForRepo(dir)
	if errors.Is(err, client.ErrNoDaemon) {
		return nil, fmt.Errorf("no warren daemon is running on repo %s; start one with: warren %sdaemon", dir, e.repoFlag())
	}
	if err != nil {
		return nil, err
	}
	if ep, err := config.ReadEndpoint(dir); err == nil && ep.Unix != "" && stale(ep) {
		_ = cl.Close()
		return nil, fmt.Errorf("daemon not running (stale %s from pid %d, which is gone); start it again with: warren %sdaemon",
			config.APIFile, ep.PID, e.repoFlag())
	}
	return cl, nil
}

// stale reports whether the endpoint record is left by a daemon that died
// (SIGKILL, a crash): its process is gone, or nothing listens on its socket.
func stale(ep config.Endpoint) bool {
	if ep.PID > 0 && !processAlive(ep.PID) {
		return true
	}
	c, err := net.Dial("unix", ep.Unix)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist)
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

// printJSON writes v as indented JSON; a nil list is written as [].
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	b, err := json.Marshal(v)
	if err == nil && string(b) == "null" {
		_, err = io.WriteString(e.stdout, "[]\n")
		return err
	}
	return enc.Encode(v)
}

func (e *env) printf(format string, a ...any) { fmt.Fprintf(e.stdout, format, a...) }

// call gets a client, makes one call with it that prints its own answer,
// and closes the client.
func call(e *env, do func(*client.Client) error) error {
	return show(e, false, func(cl *client.Client) (struct{}, error) { return struct{}{}, do(cl) },
		func(struct{}) error { return nil })
}

// wideFlag adds --wide: full peer IDs in tables.
func wideFlag(c *cobra.Command, wide *bool) {
	c.Flags().BoolVar(wide, "wide", false, "print whole peer IDs (tables fit 120 columns with short ones)")
}
