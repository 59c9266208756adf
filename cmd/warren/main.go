// Command warren runs a warren daemon and drives it through its control API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI and returns the process exit code. Failures print
// one line, "warren: <what failed and why>", on stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var u *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errInterrupted) || errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(stderr, "warren: interrupted")
		return 130
	case errors.As(err, &u):
		// The error, then on its own line the usage or the suggestion.
		fmt.Fprintf(stderr, "warren: %s\n%s\n", oneLine(err.Error()), usageText(u.usage))
		return 1
	}
	fmt.Fprintf(stderr, "warren: %s\n", oneLine(err.Error()))
	return 1
}

// usageText is the line printed under a usage error.
func usageText(s string) string {
	if strings.HasPrefix(s, "did you mean") {
		return s
	}
	return "usage: " + s
}

// oneLine folds a multi-line error (libp2p's dial errors list one address
// per line) into one line, so every failure is a single line on stderr.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "; ")
}
