package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the command tree")

const cliDocPath = "../../docs/cli.md"

func testRoot() *cobra.Command {
	return newRoot(&env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
}

// docs/cli.md is the command tree's reference; it must be current.
func TestCLIDocIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := writeCLIDoc(&b, testRoot()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(cliDocPath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatal("docs/cli.md is out of date with the command tree; run go test ./cmd/warren -update")
	}
}

// Every command's help has an Examples section.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if !c.Hidden {
			n++
			if strings.TrimSpace(c.Example) == "" {
				t.Errorf("%q has no Examples (add it to examples in examples.go)", c.CommandPath())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(testRoot())
	if n < 30 {
		t.Fatalf("walked %d commands", n)
	}
	for path := range examples {
		if c, _, err := testRoot().Find(strings.Fields(path)[1:]); err != nil || c.CommandPath() != path {
			t.Errorf("examples has %q, which is no command", path)
		}
	}
}

func runCLI(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// An unknown subcommand of a group fails with a suggestion on its own line;
// a missing argument prints the usage line.
func TestUnknownSubcommandAndUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tunnel", "lss"}, "warren: unknown command \"lss\" for \"warren tunnel\"\ndid you mean: warren tunnel ls?\n"},
		{[]string{"msg", "stat"}, "warren: unknown command \"stat\" for \"warren msg\"\ndid you mean: warren msg stats?\n"},
		{[]string{"topics", "leav"}, "did you mean: warren topics leave?\n"},
		{[]string{"tunnel", "streams", "clos"}, "did you mean: warren tunnel streams close?\n"},
		{[]string{"sned"}, "did you mean: warren send?\n"},
		{[]string{"recv"}, "\nusage: warren recv <type>\n"},
		{[]string{"send", "x"}, "\nusage: warren send <peer-id> <type> [data]\n"},
		{[]string{"peers", "--nope"}, "unknown flag: --nope\nusage: warren peers\n"},
	} {
		out, errs, code := runCLI(c.args...)
		if code != 1 || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.args, code, out, errs, c.want)
		}
	}
	// A group alone prints its help and succeeds.
	if out, _, code := runCLI("tunnel"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("warren tunnel: exit %d\n%s", code, out)
	}
}

func TestEscapeText(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                   "hello",
		"é ünïcode 日本":            "é ünïcode 日本",
		"a\nb":                    `a\nb`,
		"\x1b[31mred\x1b[0m":      `\x1b[31mred\x1b[0m`,
		"\x1b]0;title\x07":        `\x1b]0;title\x07`,
		"back\\slash":             `back\\slash`,
		"tab\tcr\r":               `tab\tcr\r`,
		"\u009b31m":               `\u009b31m`, // C1 CSI
		"bidi\u202eevil":          `bidi\u202eevil`,
		string([]byte{0xff, 'x'}): `\xffx`,
		"del\x7f":                 `del\x7f`,
	} {
		if got := escapeText([]byte(in)); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := showPayload([]byte{0, 1, 2, 0xff}); got != "<4 bytes>" {
		t.Errorf("binary payload shown as %q", got)
	}
	if got := showPayload([]byte("two\nlines")); got != `two\nlines` {
		t.Errorf("multi-line payload shown as %q", got)
	}
}

func TestShortID(t *testing.T) {
	id := "12D3KooWNqbAELQr3VSg3PWBNf9M2RBLuHoECSFYbYiGbeikwXyZ"
	if got := shortID(id, false); got != "12D3…wXyZ" {
		t.Errorf("shortID = %q", got)
	}
	if got := shortID(id, true); got != id {
		t.Errorf("wide shortID = %q", got)
	}
	if got := shortAddr("/ip4/1.2.3.4/tcp/1/p2p/"+id+"/p2p-circuit/p2p/"+id, false); got != "/ip4/1.2.3.4/tcp/1/p2p/12D3…wXyZ/p2p-circuit/p2p/12D3…wXyZ" {
		t.Errorf("shortAddr = %q", got)
	}
}

func TestSkipEmptyLines(t *testing.T) {
	for in, want := range map[string]struct {
		out     string
		skipped int
	}{
		"a\n\nb\n\n":   {"a\nb\n", 2},
		"\n\na":        {"a", 2},
		"a\nb":         {"a\nb", 0},
		"":             {"", 0},
		"x\r\n\r\ny\n": {"x\r\n\r\ny\n", 0}, // "\r" is a line with a carriage return: sent
	} {
		s := newSkipEmptyLines(&oneByteReader{strings.NewReader(in)})
		got, err := io.ReadAll(s)
		if err != nil || string(got) != want.out || s.skipped != want.skipped {
			t.Errorf("%q: %q skipped %d (%v), want %q skipped %d", in, got, s.skipped, err, want.out, want.skipped)
		}
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

// A read of stdin ends when the context does (Ctrl-C).
func TestCtxReaderInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(newCtxReader(ctx, pr))
		done <- err
	}()
	cancel()
	if err := <-done; err != errInterrupted {
		t.Fatalf("read after cancel: %v", err)
	}
	pr.Close() // ends the read left blocked
}
