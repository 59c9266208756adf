package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/client"
)

// maxStdinMessage bounds a message read whole from stdin: the largest
// messages.max_message_size any config accepts.
const maxStdinMessage = client.MaxMessageSize

// receivedJSON is a message as recv --json prints it: the API's record,
// plus "text" when the payload is valid UTF-8.
type receivedJSON struct {
	*client.ReceivedMessage
	Text *string `json:"text,omitempty"`
}

func msgCmds(e *env) []*cobra.Command {
	m := &cobra.Command{
		Use:   "msg",
		Short: "Direct messages: statistics (see also send, recv, request, respond)",
	}
	m.AddCommand(msgStatsCmd(e))
	return []*cobra.Command{sendCmd(e), recvCmd(e), requestCmd(e), respondCmd(e), m}
}

// payloadArg returns the data argument, or all of stdin when there is none;
// Ctrl-C ends the read.
func (e *env) payloadArg(ctx context.Context, args []string, i int) ([]byte, error) {
	if len(args) > i {
		return []byte(args[i]), nil
	}
	b, err := io.ReadAll(io.LimitReader(e.stdinFor(ctx), maxStdinMessage+1))
	if errors.Is(err, errInterrupted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read the message from stdin: %w", err)
	}
	if len(b) > maxStdinMessage {
		return nil, fmt.Errorf("stdin holds more than %d bytes, the largest message warren allows", maxStdinMessage)
	}
	return b, nil
}

// textLine writes a payload as one line of text.
func textLine(w io.Writer, p []byte) error {
	if _, err := w.Write(p); err != nil {
		return err
	}
	if len(p) == 0 || p[len(p)-1] != '\n' {
		_, err := w.Write([]byte{'\n'})
		return err
	}
	return nil
}

func sendCmd(e *env) *cobra.Command {
	var prio, id string
	var lines bool
	c := &cobra.Command{
		Use:   "send <peer-id> <type> [data]",
		Short: "Send a direct message (data, or all of stdin; with --lines one message per stdin line)",
		Long: `Send a direct message of a type to a peer. The message is the data argument or,
without one, all of stdin. With --lines every line of stdin (without its
newline) is one message; they are streamed to the daemon, which sends each as
it reads it, so this suits bulk sends. The command returns once every message
is queued for the peer, or fails naming the message that could not be sent.

The peer ID alone is enough: the daemon finds the peer and connects, directly
or through a relay. A relayed connection is first given tunnels.direct_wait
(15s) for hole punching to make it direct; it then carries messages only if
its relay allows at least 1 MiB (a relay of your own with a raised
[swarm.relay_limit]; public relays allow 128 KiB). Otherwise the command fails
with one line naming the peer, each step tried and the fix.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := args[1]
			if lines && len(args) == 3 {
				return errors.New("--lines reads the messages from stdin: give no data argument")
			}
			if lines && id != "" {
				return errors.New("--id names one message: it cannot be used with --lines")
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			if lines {
				in := newSkipEmptyLines(e.stdinFor(cmd.Context()))
				res, err := cl.SendMessages(cmd.Context(), client.BulkParams{Peer: args[0], Type: typ, Priority: prio}, in)
				if err != nil {
					return interrupted(cmd.Context(), err)
				}
				e.printf("sent %d %s to %s%s\n", res.Sent, plural(int(res.Sent), "message"), args[0], skippedNote(in.skipped))
				return nil
			}
			data, err := e.payloadArg(cmd.Context(), args, 2)
			if err != nil {
				return err
			}
			if _, err := cl.SendMessage(cmd.Context(), client.SendRequest{Peer: args[0], Type: typ, Payload: data, Priority: prio, ID: id}); err != nil {
				return interrupted(cmd.Context(), err)
			}
			e.printf("sent 1 message to %s\n", args[0])
			return nil
		},
	}
	c.Flags().StringVar(&prio, "priority", "normal", "high, normal or low (high goes first; low is never starved)")
	c.Flags().BoolVar(&lines, "lines", false, "send each line of stdin as one message")
	c.Flags().StringVar(&id, "id", "", "message id (32 hex digits), so that a retry is recognised by --dedup subscribers")
	return c
}

// interrupted turns the error of a call that Ctrl-C cut short into
// errInterrupted.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	return err
}

// skippedNote says how many empty lines --lines skipped.
func skippedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (skipped %d empty %s)", n, plural(n, "line"))
}

func recvCmd(e *env) *cobra.Command {
	var asJSON, dedup bool
	var style textStyle
	var count, buffer int
	var policy string
	c := &cobra.Command{
		Use:   "recv <type>",
		Short: "Print direct messages of a type as they arrive",
		Long: `Subscribe to the direct messages of a type and print each as it arrives, as
one line: its sender (short; --wide for the whole ID) and its payload as text,
control characters escaped (\n, \x1b: a peer cannot steer your terminal) and a
payload that is not text shown as <N bytes>. With --raw the payload's bytes
are printed as they are, each followed by a newline when it has none (for a
pipe). With --json one JSON object a line with type,
from, id, time, sent, payload (base64) and, when the payload is valid UTF-8,
text (the payload as a string: jq -r .text). The subscription lives in the daemon
while this command runs; it ends after -n messages or on Ctrl-C.

The subscription holds up to --buffer messages. When they are not read fast
enough, --policy decides: block (the default) loses nothing and slows the
senders down; drop-oldest and drop-newest discard messages and count them.
Drops are reported on stderr as they happen (at most once a second), and the
command ends with a summary line on stderr: "received X, dropped Y". After -n
messages, Y includes the messages the subscription still held when it closed,
as the daemon counts them; after Ctrl-C it does not include those ('warren msg
stats' counts them in the type's dropped).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := args[0]
			cl, err := e.client()
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			ctx := cmd.Context()
			st, err := cl.SubscribeMessages(ctx, typ, client.SubscribeOptions{Policy: policy, Buffer: buffer, Dedup: dedup, Count: count})
			if err != nil {
				return err
			}
			defer st.Close()
			return printSubscription(ctx, e, st, asJSON, style, func(ev client.MessageEvent) record {
				if m := ev.ReceivedMessage; m != nil {
					return record{msg: receivedJSON{m, textOf(m.Payload)}, from: m.From, payload: m.Payload}
				}
				return record{dropped: ev.Dropped}
			}, func(dropped uint64) string {
				return fmt.Sprintf("warren: recv %q: %d messages dropped so far (policy %s, buffer %d)",
					st.Info.Type, dropped, st.Info.Policy, st.Info.Buffer)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	c.Flags().IntVarP(&count, "count", "n", 0, "exit after this many messages (0: until interrupted)")
	c.Flags().StringVar(&policy, "policy", "block", "when the buffer is full: block, drop-oldest or drop-newest")
	c.Flags().IntVar(&buffer, "buffer", client.DefaultSubscribeBuffer, "messages the subscription holds")
	c.Flags().BoolVar(&dedup, "dedup", false, "discard messages whose (sender, id) was already delivered")
	textFlags(c, &style)
	return c
}

func requestCmd(e *env) *cobra.Command {
	var timeout time.Duration
	var asJSON, raw bool
	c := &cobra.Command{
		Use:   "request <peer-id> <type> [data]",
		Short: "Send a request (data, or all of stdin) and print the reply",
		Long: `Send a request of a type to a peer and print the reply's payload (with a
newline added when it has none; --json prints the whole reply). The peer answers
with its responder for the type ('warren respond'). At a terminal the reply's
control characters other than newline and tab are escaped (\x1b), so the peer
cannot steer the terminal; --raw prints them as they are. A timeout, a missing
responder or a responder's error fails the command. A peer reachable only
through a relay is reached as by 'warren send', waiting for a hole punch at
most half of --timeout; over a relay too small (a public one) the command fails
with one line naming the peer, each step tried and the fix.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < time.Millisecond { // timeout_ms counts whole milliseconds; the daemon checks the rest
				return fmt.Errorf("--timeout %s: expected a duration from 1ms to %s", timeout, client.MaxTimeout)
			}
			data, err := e.payloadArg(cmd.Context(), args, 2)
			if err != nil {
				return err
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			rep, err := cl.RequestMessage(cmd.Context(), client.RequestRequest{Peer: args[0], Type: args[1], Payload: data, TimeoutMS: timeout.Milliseconds()})
			if err != nil {
				return err
			}
			if asJSON {
				return e.printJSON(rep)
			}
			if !raw && isTerminal(e.stdout) {
				// The peer's reply cannot steer the terminal either.
				return textLine(e.stdout, []byte(terminalText(rep.Payload)))
			}
			return textLine(e.stdout, rep.Payload)
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the reply")
	c.Flags().BoolVar(&asJSON, "json", false, "print the reply as JSON")
	c.Flags().BoolVar(&raw, "raw", false, "at a terminal too, print the reply's bytes as they are (control characters are escaped there otherwise)")
	return c
}

func respondCmd(e *env) *cobra.Command {
	var command string
	var echo bool
	var count, parallel int
	c := &cobra.Command{
		Use:   "respond <type> (--exec '<shell command>' | --echo)",
		Short: "Answer the requests of a type: by running a command, or by echoing them",
		Long: `Register as this node's responder for a message type until -n requests are
answered or Ctrl-C. With --exec each request runs the shell command with the
request's payload on stdin; its stdout is the reply, and a non-zero exit (or
not finishing before the requester's deadline) is an error reply carrying the
end of its stderr. The command sees WARREN_FROM, WARREN_TYPE, WARREN_ID and
WARREN_DEADLINE in its environment. --echo replies with the payload itself.
Only one responder per type: a second one is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := args[0]
			if (command == "") == !echo {
				return errors.New("give exactly one of --exec '<shell command>' or --echo")
			}
			if count < 0 {
				return fmt.Errorf("-n %d: expected a number of requests >= 0 (0: until interrupted)", count)
			}
			if parallel < 1 || parallel > 1024 {
				return fmt.Errorf("--parallel %d: expected 1 to 1024", parallel)
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			ctx := cmd.Context()
			rs, err := cl.HandleRequests(ctx, typ)
			if err != nil {
				return err
			}
			defer rs.Close()
			answer := func(ctx context.Context, r *client.IncomingRequest) ([]byte, error) { return r.Payload, nil }
			if command != "" {
				answer = func(ctx context.Context, r *client.IncomingRequest) ([]byte, error) {
					return runResponder(ctx, command, r)
				}
			}
			var wg sync.WaitGroup
			var answered, failed atomic.Int64
			sem := make(chan struct{}, parallel)
			var runErr error
			for taken := 0; count == 0 || taken < count; taken++ {
				r, err := rs.Next()
				if err != nil {
					if ctx.Err() == nil {
						runErr = err
					}
					break
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					rctx := ctx
					if !r.Deadline.IsZero() {
						var cancel context.CancelFunc
						rctx, cancel = context.WithDeadline(ctx, r.Deadline)
						defer cancel()
					}
					rep := client.ReplyRequest{RID: r.RID}
					out, err := answer(rctx, r)
					if err != nil {
						rep.Error = err.Error()
					} else {
						rep.Payload = out
					}
					if err := cl.ReplyRequest(ctx, rep); err != nil {
						fmt.Fprintf(e.stderr, "warren: respond %q: reply to the request from %s: %v\n", typ, r.From, err)
						return
					}
					answered.Add(1)
					if rep.Error != "" {
						failed.Add(1)
					}
				}()
			}
			wg.Wait()
			fmt.Fprintf(e.stderr, "answered %d %s (%d with an error reply)\n", answered.Load(), plural(int(answered.Load()), "request"), failed.Load())
			return runErr
		},
	}
	c.Flags().StringVar(&command, "exec", "", "shell command answering each request (payload on stdin, reply on stdout)")
	c.Flags().BoolVar(&echo, "echo", false, "reply with the request's payload")
	c.Flags().IntVarP(&count, "count", "n", 0, "exit after this many requests (0: until interrupted)")
	c.Flags().IntVar(&parallel, "parallel", 8, "requests answered at once")
	return c
}

// textFlags adds the flags of recv's and sub's text mode.
func textFlags(c *cobra.Command, style *textStyle) {
	c.Flags().BoolVar(&style.raw, "raw", false, "print each payload's bytes as they are (no sender, no escaping)")
	c.Flags().BoolVar(&style.wide, "wide", false, "print the sender's whole peer ID")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// runResponder runs a shell command answering one request.
func runResponder(ctx context.Context, command string, r *client.IncomingRequest) ([]byte, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	c.Stdin = bytes.NewReader(r.Payload)
	var out bytes.Buffer
	errTail := &tailBuffer{max: 2048}
	c.Stdout, c.Stderr = &out, errTail
	c.Env = append(os.Environ(), "WARREN_FROM="+r.From, "WARREN_TYPE="+r.Type, "WARREN_ID="+r.ID)
	if !r.Deadline.IsZero() {
		c.Env = append(c.Env, "WARREN_DEADLINE="+r.Deadline.Format(time.RFC3339Nano))
	}
	c.WaitDelay = time.Second // a background child keeping the pipes open does not hold us
	err := c.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("responder command did not finish before the requester's deadline")
	}
	if err != nil {
		tail := strings.Join(strings.Fields(string(errTail.b)), " ")
		if tail != "" {
			return nil, fmt.Errorf("responder command failed (%v): %s", err, tail)
		}
		return nil, fmt.Errorf("responder command failed (%v)", err)
	}
	return out.Bytes(), nil
}

func msgStatsCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats",
		Short: "Show message counters: per type, per subscription and per peer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) (client.MessageStats, error) { return cl.MessageStats(cmd.Context()) },
				func(st client.MessageStats) error { return printMsgStats(e.stdout, st) })
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printMsgStats(w io.Writer, st client.MessageStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	types := make([]string, 0, len(st.Types))
	for t := range st.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintln(tw, "TYPE\tIN\tBYTES IN\tOUT\tBYTES OUT\tDROPPED\tDUPLICATES\tUNHANDLED\tSEND FAILED\tSUBSCRIBERS\tHANDLER")
	for _, t := range types {
		s := st.Types[t]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\n", t, s.MsgsIn, s.BytesIn, s.MsgsOut, s.BytesOut,
			s.Dropped, s.Dups, s.Unhandled, s.SendFailed, s.Subscribers, s.Handler)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SUBSCRIPTION\tTYPE\tPOLICY\tBUFFER\tDEDUP\tQUEUED\tDELIVERED\tDROPPED\tDUPLICATES")
	for _, s := range st.Subscriptions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%v\t%d\t%d\t%d\t%d\n", s.ID, s.Type, s.Policy, s.Buffer, s.Dedup, s.Queued, s.Delivered, s.Dropped, s.Duplicates)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "PEER\tOPEN\tQUEUED HIGH/NORMAL/LOW\tSENT\tFAILED\tLOST\tLAST ERROR")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%v\t%d/%d/%d\t%d\t%d\t%d\t%s\n", p.Peer, p.Open, p.Queued.High, p.Queued.Normal, p.Queued.Low,
			p.Sent, p.Failed, p.Lost, p.LastError)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "bad frames %d, late replies %d, failed replies %d, pending requests %d\n",
		st.BadFrames, st.LateReplies, st.FailedReplies, st.PendingRequests)
	return tw.Flush()
}
