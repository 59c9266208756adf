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
				res, err := cl.PublishMessages(cmd.Context(), client.BulkPublishParams{Topic: topic, TimeoutMS: timeout.Milliseconds()}, e.stdin)
				if err != nil {
					return err
				}
				e.printf("published %d messages to topic %q\n", res.Published, topic)
				return nil
			}
			data, err := e.payloadArg(args, 1)
			if err != nil {
				return err
			}
			if _, err := cl.Publish(cmd.Context(), client.PublishRequest{Topic: topic, Data: data, TimeoutMS: timeout.Milliseconds()}); err != nil {
				return err
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
	var count, buffer int
	c := &cobra.Command{
		Use:   "sub <topic>",
		Short: "Print a topic's messages as they arrive",
		Long: `Subscribe to a broadcast topic and print each message as it arrives: its data
as one line of text, or with --json one JSON object a line with topic, from
(the author), received_from (the peer that forwarded it), id, time, data
(base64) and, when the data is valid UTF-8, text (the data as a string:
jq -r .text). The subscription lives in the daemon while this command runs; it
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
			return printSubscription(ctx, e, st, asJSON, func(ev client.TopicEvent) record {
				if m := ev.TopicMessage; m != nil {
					return record{msg: topicJSON{m, textOf(m.Data)}, payload: m.Data}
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
	return c
}

// topicJSON is a message as sub --json prints it: the API's record, plus
// "text" when the data is valid UTF-8.
type topicJSON struct {
	*client.TopicMessage
	Text *string `json:"text,omitempty"`
}

func printTopics(w io.Writer, ts []client.TopicInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPEERS\tMESH\tSUBSCRIPTIONS\tPUBLISHED\tRECEIVED\tDROPPED\tREJECTED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", t.Name, t.Peers, t.Mesh, t.Subscriptions,
			t.Published, t.Received, t.Dropped, t.Rejected)
	}
	return tw.Flush()
}
