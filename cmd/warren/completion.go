package main

// Shell completion ('warren completion bash|zsh|fish|powershell'): flag
// values from fixed lists, and peer IDs, message types, topics and tunnel
// ids asked of the running daemon (nothing when none runs).

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
)

// completeTimeout bounds a completion's call to the daemon: a shell waits
// on it.
const completeTimeout = 2 * time.Second

// fixed completes a flag's value from a list.
func fixed(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// fromDaemon completes from what the running daemon lists.
func fromDaemon(e *env, list func(context.Context, *client.Client) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cl, err := e.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer func() { _ = cl.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
		defer cancel()
		var out []string
		for _, v := range list(ctx, cl) {
			if strings.HasPrefix(v, prefix) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func peerIDs(ctx context.Context, cl *client.Client) []string {
	ps, _ := cl.Peers(ctx)
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func messageTypes(ctx context.Context, cl *client.Client) []string {
	st, _ := cl.MessageStats(ctx)
	out := make([]string, 0, len(st.Types))
	for t := range st.Types {
		if !strings.HasPrefix(t, "(") { // "(other)": the types over the counted ones
			out = append(out, t)
		}
	}
	return out
}

func topicNames(ctx context.Context, cl *client.Client) []string {
	ts, _ := cl.Topics(ctx)
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func tunnelIDs(ctx context.Context, cl *client.Client) []string {
	ts, _ := cl.Tunnels(ctx, client.TunnelListOptions{})
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, strconv.FormatUint(t.ID, 10))
	}
	return out
}

func streamIDs(ctx context.Context, cl *client.Client) []string {
	ss, _ := cl.TunnelStreams(ctx, client.TunnelListOptions{})
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, strconv.FormatUint(s.ID, 10))
	}
	return out
}

func tunnelProtocols(ctx context.Context, cl *client.Client) []string {
	ts, _ := cl.Tunnels(ctx, client.TunnelListOptions{})
	seen := map[string]bool{}
	var out []string
	for _, t := range ts {
		if !seen[t.Protocol] {
			seen[t.Protocol] = true
			out = append(out, t.Protocol)
		}
	}
	return out
}

// positional completes the args of a command: the i-th arg from complete[i],
// nothing after them.
func positional(complete ...cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) < len(complete) && complete[len(args)] != nil {
			return complete[len(args)](cmd, args, prefix)
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// addCompletions registers the completions of every command's flags and
// arguments.
func addCompletions(root *cobra.Command, e *env) {
	peers, types := fromDaemon(e, peerIDs), fromDaemon(e, messageTypes)
	topics, tunnels := fromDaemon(e, topicNames), fromDaemon(e, tunnelIDs)
	flagValues := map[string]cobra.CompletionFunc{
		"policy":       fixed("block", "drop-oldest", "drop-newest"),
		"kind":         fixed(client.TunnelKindListen, client.TunnelKindForward),
		"priority":     fixed("high", "normal", "low"),
		"log-level":    fixed("debug", "info", "warn", "error"),
		"log-format":   fixed("text", "json"),
		"init-profile": fixed(config.Profiles()...),
		"profile":      fixed(config.Profiles()...),
		"allow":        peers,
		"protocol":     fromDaemon(e, tunnelProtocols),
	}
	args := map[string]cobra.CompletionFunc{
		"warren connect":              positional(nil),
		"warren disconnect":           positional(peers),
		"warren ping":                 positional(peers),
		"warren send":                 positional(peers, types),
		"warren request":              positional(peers, types),
		"warren recv":                 positional(types),
		"warren respond":              positional(types),
		"warren pub":                  positional(topics),
		"warren sub":                  positional(topics),
		"warren topics leave":         positional(topics),
		"warren tunnel forward":       positional(nil, nil, peers),
		"warren tunnel close":         positional(tunnels),
		"warren tunnel streams close": positional(fromDaemon(e, streamIDs)),
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, f := range flagValues {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, f)
			}
		}
		if f, ok := args[c.CommandPath()]; ok {
			c.ValidArgsFunction = f
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
