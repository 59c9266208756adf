package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/client"
)

func gossipCmds(e *env) []*cobra.Command {
	return []*cobra.Command{pubCmd(e), subCmd(e), topicsCmd(e)}
}

func pubCmd(e *env) *cobra.Command {
	var lines bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "pub <topic> [data]",
		Short: "Publish to a topic (data, or all of stdin; with --lines one message per stdin line)",
		Long: `Publish a message to every member of a broadcast topic. The message is the
data argument or, without one, all of stdin. With --lines every line of stdin
(without its newline) is one message; they are streamed to the daemon, which
publishes each as it reads it.

Members of a topic find each other through the DHT, so the publisher and the
subscribers need only be connected to the same network. When the topic has no
subscribed peer yet, the publish waits for one up to --timeout (default: the
daemon's gossip.publish_timeout) and then fails: a message is never published
into an empty topic. A message over gossip.max_message_size fails too.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			// timeout_ms counts whole milliseconds; the daemon checks the rest.
			if timeout < 0 || timeout > 0 && timeout < time.Millisecond {
				return fmt.Errorf("--timeout %s: expected a duration from 1ms to %s (0: the daemon's gossip.publish_timeout)", timeout, client.MaxTimeout)
			}
			if lines && len(args) == 2 {
				return errors.New("--lines reads the messages from stdin: give no data argument")
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			if lines {
				in := newSkipEmptyLines(e.stdinFor(cmd.Context()))
				res, err := cl.PublishMessages(cmd.Context(), client.BulkPublishParams{Topic: topic, TimeoutMS: timeout.Milliseconds()}, in)
				if err != nil {
					return interrupted(cmd.Context(), err)
				}
				e.printf("published %d %s to topic %q%s\n", res.Published, plural(int(res.Published), "message"), topic, skippedNote(in.skipped))
				return nil
			}
			data, err := e.payloadArg(cmd.Context(), args, 1)
			if err != nil {
				return err
			}
			if _, err := cl.Publish(cmd.Context(), client.PublishRequest{Topic: topic, Data: data, TimeoutMS: timeout.Milliseconds()}); err != nil {
				return interrupted(cmd.Context(), err)
			}
			e.printf("published 1 message to topic %q\n", topic)
			return nil
		},
	}
	c.Flags().BoolVar(&lines, "lines", false, "publish each line of stdin as one message")
	c.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait for a first subscribed peer (0: the daemon's gossip.publish_timeout)")
	return c
}

func subCmd(e *env) *cobra.Command {
	var asJSON bool
	var style textStyle
	var count, buffer int
	c := &cobra.Command{
		Use:   "sub <topic>",
		Short: "Print a topic's messages as they arrive",
		Long: `Subscribe to a broadcast topic and print each message as it arrives, as one
line: its author (short; --wide for the whole ID) and its payload as text,
control characters escaped (\n, \x1b: a peer cannot steer your terminal) and a
payload that is not text shown as <N bytes>. With --raw the payload's bytes
are printed as they are. With --json one JSON object a line with topic, from
(the author), received_from (the peer that forwarded it), id, time, payload
(base64, the field recv --json has; the API calls it data) and, when the
payload is valid UTF-8, text (the payload as a string: jq -r .text). The subscription lives in the daemon while this command runs; it
ends after -n messages or on Ctrl-C. Messages published before the
subscription was made are not delivered.

The subscription holds up to --buffer messages; when they are not read fast
enough, further messages are dropped and counted (GossipSub cannot slow a
publisher down). Drops are reported on stderr as they happen (at most once a
second), and the command ends with a summary line on stderr:
"received X, dropped Y". 'warren topics' shows the topic's other losses.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			cl, err := e.client()
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			ctx := cmd.Context()
			st, err := cl.SubscribeTopic(ctx, topic, client.TopicSubscribeOptions{Buffer: buffer, Count: count})
			if err != nil {
				return err
			}
			defer st.Close()
			return printSubscription(ctx, e, st, asJSON, style, func(ev client.TopicEvent) record {
				if m := ev.TopicMessage; m != nil {
					return record{msg: newTopicJSON(m), from: m.From, payload: m.Data}
				}
				return record{dropped: ev.Dropped}
			}, func(dropped uint64) string {
				return fmt.Sprintf("warren: sub %q: %d messages dropped so far (buffer %d: read faster or raise --buffer)",
					st.Info.Topic, dropped, st.Info.Buffer)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	c.Flags().IntVarP(&count, "count", "n", 0, "exit after this many messages (0: until interrupted)")
	c.Flags().IntVar(&buffer, "buffer", client.DefaultSubscribeBuffer, "messages the subscription holds before it drops")
	textFlags(c, &style)
	return c
}

func topicsCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "topics",
		Short: "List the joined topics with their peers and message counters",
		Long: `List the broadcast topics this node has joined (by publishing or subscribing):
connected peers in the topic, peers in this node's GossipSub mesh, open local
subscriptions, messages published and received, and messages dropped (every
loss GossipSub can have, by reason in --json) and rejected by validation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) ([]client.TopicInfo, error) { return cl.Topics(cmd.Context()) },
				func(ts []client.TopicInfo) error { return printTopics(e.stdout, ts) })
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(topicsLeaveCmd(e))
	return c
}

func topicsLeaveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "leave <topic>",
		Short: "Leave a joined topic that no 'warren sub' reads: stop relaying it and forget its counters",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(e, func(cl *client.Client) error {
				res, err := cl.LeaveTopic(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !res.Left {
					return fmt.Errorf("topic %q is not joined (see warren topics)", args[0])
				}
				e.printf("left topic %q\n", args[0])
				return nil
			})
		},
	}
}

// topicJSON is a message as sub --json prints it: the API's record with its
// data under "payload", as recv --json has it, plus "text" when the payload
// is valid UTF-8.
type topicJSON struct {
	Topic        string    `json:"topic"`
	From         string    `json:"from"`
	ReceivedFrom string    `json:"received_from"`
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Payload      []byte    `json:"payload"`
	Text         *string   `json:"text,omitempty"`
}

func newTopicJSON(m *client.TopicMessage) topicJSON {
	return topicJSON{Topic: m.Topic, From: m.From, ReceivedFrom: m.ReceivedFrom, ID: m.ID, Time: m.Time,
		Payload: nonNilBytes(m.Data), Text: textOf(m.Data)}
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func printTopics(w io.Writer, ts []client.TopicInfo) error {
	if len(ts) == 0 {
		_, err := fmt.Fprintln(w, "no topics")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPEERS\tMESH\tSUBSCRIPTIONS\tPUBLISHED\tRECEIVED\tDROPPED\tREJECTED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", t.Name, t.Peers, t.Mesh, t.Subscriptions,
			t.Published, t.Received, t.Dropped, t.Rejected)
	}
	return tw.Flush()
}
