package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// cliDocHead opens docs/cli.md.
const cliDocHead = `# warren command line reference

Generated from the command tree (` + "`go test ./cmd/warren -update`" + ` rewrites it; ` + "`go test ./cmd/warren`" + `
fails when it is out of date). ` + "`warren <command> --help`" + ` prints the same.

Exit status: 0 on success; 1 on any error, with one line on stderr starting with ` + "`warren: `" + `
(a bad command line adds a second one: the usage, or a suggestion for an unknown command); 130
when Ctrl-C interrupted a command before it did its work (` + "`send`" + `, ` + "`pub`" + `, ` + "`request`" + `,
` + "`wait`" + `). ` + "`recv`" + `, ` + "`sub`" + ` and ` + "`respond`" + ` run until Ctrl-C and then exit 0.

Shell completion: ` + "`source <(warren completion bash)`" + ` (or zsh, fish, powershell) completes commands,
flags, the values of ` + "`--policy`" + `, ` + "`--kind`" + `, ` + "`--priority`" + `, ` + "`--log-level`" + `, ` + "`--log-format`" + `
and the profiles, and, from the running daemon of the ` + "`--repo`" + `, peer IDs, message types,
topics, tunnel ids and stream ids.

`

// writeCLIDoc writes the reference of every command under root as Markdown.
func writeCLIDoc(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	b.WriteString(cliDocHead)
	b.WriteString("Global flags (every command):\n\n```\n")
	b.WriteString(root.PersistentFlags().FlagUsagesWrapped(100))
	b.WriteString("```\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", c.CommandPath(), c.Short)
		if c.Long != "" {
			fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.Long))
		}
		fmt.Fprintf(&b, "\n```\n%s\n```\n", usageLine(c))
		if subs := available(c); len(subs) > 0 {
			b.WriteString("\nCommands:\n\n")
			for _, s := range subs {
				fmt.Fprintf(&b, "- [`%s`](#%s): %s\n", s.CommandPath(), anchor(s.CommandPath()), s.Short)
			}
		}
		if fs := c.NonInheritedFlags(); fs.HasAvailableFlags() {
			fmt.Fprintf(&b, "\nFlags:\n\n```\n%s```\n", fs.FlagUsagesWrapped(100))
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "\nExamples:\n\n```\n%s\n```\n", c.Example)
		}
		for _, s := range available(c) {
			walk(s)
		}
	}
	walk(root)
	_, err := io.WriteString(w, b.String())
	return err
}

// available lists a command's subcommands that help shows.
func available(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() || s.Name() == "help" {
			out = append(out, s)
		}
	}
	return out
}

// anchor is GitHub's anchor of a "## title" heading.
func anchor(title string) string {
	return strings.ReplaceAll(strings.ToLower(title), " ", "-")
}
