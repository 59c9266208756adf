package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/client"
)

func tunnelCmds(e *env) []*cobra.Command {
	c := &cobra.Command{
		Use:   "tunnel",
		Short: "Carry TCP, unix-socket and UDP services over libp2p streams (like ssh -L, ipfs p2p)",
		Long: `A listen tunnel exposes a local service to remote peers under a protocol name
(/x/...); a forward tunnel accepts local connections and carries each one to a
remote peer's listen tunnel. Tunnels are saved in the repo and restored when the
daemon starts again, unless made with --temp. See docs/api-tunnel.md.`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(tunnelListenCmd(e), tunnelForwardCmd(e), tunnelLsCmd(e), tunnelCloseCmd(e), tunnelStreamsCmd(e))
	return []*cobra.Command{c}
}

func tunnelListenCmd(e *env) *cobra.Command {
	var req client.TunnelListenRequest
	var asJSON bool
	c := &cobra.Command{
		Use:   "listen <protocol> <target-multiaddr>",
		Short: "Expose a local service (/ip4|ip6|dns/<host>/tcp|udp/<port> or /unix/<path>) to remote peers on <protocol>",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Protocol, req.Target = args[0], args[1]
			return show(e, asJSON, func(cl *client.Client) (client.TunnelInfo, error) { return cl.TunnelListen(cmd.Context(), req) },
				func(info client.TunnelInfo) error {
					who := "any peer"
					if len(info.Allow) > 0 {
						who = strings.Join(info.Allow, ", ")
					}
					e.printf("listening on %s: streams from %s go to %s%s\n", info.Protocol, who, info.TargetAddress, tempNote(info.Temp))
					return nil
				})
		},
	}
	c.Flags().StringArrayVar(&req.Allow, "allow", nil, "only this peer ID may connect (repeat for several); default: any peer")
	c.Flags().BoolVar(&req.ReportPeerID, "report-peer-id", false, "write the remote peer ID and a newline to the target before any tunnelled byte (TCP and unix targets)")
	newTunnelFlags(c, &req.AllowCustomProtocol, &req.Temp, &asJSON)
	c.Flags().IntVar(&req.MaxConns, "max-conns", 0, "streams served at once, one peer at most half of them (0: the daemon's tunnels.max_conns_per_tunnel)")
	return c
}

func tunnelForwardCmd(e *env) *cobra.Command {
	var req client.TunnelForwardRequest
	var asJSON bool
	c := &cobra.Command{
		Use:   "forward <protocol> <listen-multiaddr> <peer-id | multiaddr ending in /p2p/<peer-id>>",
		Short: "Accept local connections on <listen-multiaddr> (port 0 picks one) and carry each to the peer's <protocol> listener",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Protocol, req.ListenAddress, req.Peer = args[0], args[1], args[2]
			return show(e, asJSON, func(cl *client.Client) (client.TunnelInfo, error) { return cl.TunnelForward(cmd.Context(), req) },
				func(info client.TunnelInfo) error {
					e.printf("forwarding %s to %s on %s%s\n", info.ListenAddress, info.Protocol, info.TargetAddress, tempNote(info.Temp))
					return nil
				})
		},
	}
	newTunnelFlags(c, &req.AllowCustomProtocol, &req.Temp, &asJSON)
	c.Flags().IntVar(&req.MaxConns, "max-conns", 0, "local clients served at once; a UDP forward keeps at most min(this, 256) client flows (0: the daemon's tunnels.max_conns_per_tunnel)")
	return c
}

// newTunnelFlags adds the flags listen and forward share.
func newTunnelFlags(c *cobra.Command, allowCustomProtocol, temp, asJSON *bool) {
	c.Flags().BoolVar(allowCustomProtocol, "allow-custom-protocol", false, "allow a protocol name that does not start with /x/")
	c.Flags().BoolVar(temp, "temp", false, "do not save the tunnel: it ends with the daemon")
	c.Flags().BoolVar(asJSON, "json", false, "print the new tunnel as JSON")
}

func tempNote(temp bool) string {
	if temp {
		return " (temporary)"
	}
	return ""
}

// listOptions adds the optional --kind and --protocol filters of ls and streams.
func listOptions(c *cobra.Command, o *client.TunnelListOptions) {
	c.Flags().StringVar(&o.Kind, "kind", "", "only "+client.TunnelKindListen+" or only "+client.TunnelKindForward+" tunnels")
	c.Flags().StringVar(&o.Protocol, "protocol", "", "only this protocol")
}

func tunnelLsCmd(e *env) *cobra.Command {
	c := tunnelListCmd(e, "ls", "List listen and forward tunnels: traffic, connections opened, refused and failed, and the last error",
		"no tunnels", (*client.Client).Tunnels, func(tw *tabwriter.Writer, ts []client.TunnelInfo, wide bool) {
			fmt.Fprintln(tw, "ID\tKIND\tPROTOCOL\tLOCAL\tPEER\tACTIVE\tOK/REF/FAIL\tIN/OUT\tSTATUS")
			for _, t := range ts {
				// A listener's local end is its target and its peers the
				// allowed ones; a forward's are its listen address and peer.
				local, peers := t.ListenAddress, shortAddr(t.TargetAddress, wide)
				if t.Kind == client.TunnelKindListen {
					local, peers = t.TargetAddress, "any"
					if len(t.Allow) > 0 {
						short := make([]string, len(t.Allow))
						for i, a := range t.Allow {
							short[i] = shortID(a, wide)
						}
						peers = strings.Join(short, ",")
					}
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d/%d/%d\t%s/%s\t%s\n", t.ID, t.Kind, t.Protocol,
					local, peers, t.ActiveStreams, t.Opened, t.Refused+t.LimitRefused, t.Failed,
					byteSize(t.BytesIn), byteSize(t.BytesOut), tunnelStatus(t))
			}
		})
	c.Long = `List the tunnels: for a listener, LOCAL is the service it exposes and PEER the
peers allowed to connect; for a forward, LOCAL is the address it accepts
connections on and PEER the peer it carries them to. OK/REF/FAIL counts the
connections established, refused (not allowed, or over a cap) and failed (the
peer has no such listener, the target refused, ...). STATUS is ok, down (the
tunnel is not running: its error follows the table, and a tunnel that failed
to restore is retried with backoff) or failing (its last connection failed:
the error follows the table). --json has every counter.`
	return c
}

// tunnelStatus is the STATUS column: ok, down (not running) or failing
// (its last connection failed).
func tunnelStatus(t client.TunnelInfo) string {
	status := "ok"
	switch {
	case t.Error != "":
		status = "down"
	case t.LastError != "":
		status = "failing"
	}
	if t.Temp {
		status += " (temp)"
	}
	return status
}

// tunnelErrors are the lines under the ls table: each tunnel's error.
func tunnelErrors(ts []client.TunnelInfo) []string {
	var out []string
	for _, t := range ts {
		switch {
		case t.Error != "":
			out = append(out, fmt.Sprintf("tunnel %d down: %s", t.ID, t.Error))
		case t.LastError != "":
			out = append(out, fmt.Sprintf("tunnel %d last failure: %s", t.ID, t.LastError))
		}
	}
	return out
}

// tunnelListCmd makes ls or streams: it lists what fetch returns, filtered
// by --kind and --protocol, as JSON with --json, as none when there is
// nothing, and otherwise as the table that table writes.
func tunnelListCmd[T any](e *env, use, short, none string, fetch func(*client.Client, context.Context, client.TunnelListOptions) ([]T, error),
	table func(*tabwriter.Writer, []T, bool)) *cobra.Command {
	var asJSON, wide bool
	var o client.TunnelListOptions
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) ([]T, error) { return fetch(cl, cmd.Context(), o) },
				func(items []T) error {
					if len(items) == 0 {
						e.printf("%s\n", none)
						return nil
					}
					if err := printTable(e.stdout, wide, func(tw *tabwriter.Writer) { table(tw, items, wide) }); err != nil {
						return err
					}
					if ts, ok := any(items).([]client.TunnelInfo); ok {
						if errs := tunnelErrors(ts); len(errs) > 0 {
							return printTable(e.stdout, wide, func(tw *tabwriter.Writer) {
								fmt.Fprintln(tw)
								for _, l := range errs {
									fmt.Fprintln(tw, l)
								}
							})
						}
					}
					return nil
				})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	wideFlag(c, &wide)
	listOptions(c, &o)
	return c
}

func tunnelCloseCmd(e *env) *cobra.Command {
	var f client.TunnelCloseRequest
	c := &cobra.Command{
		Use:   "close <id> | --all | [--protocol P] [--listen-address A] [--target-address T]",
		Short: "Close a tunnel by the id 'warren tunnel ls' shows, or the tunnels matching all the given filters",
		Long: `Close tunnels, end their streams and forget them (a saved tunnel is removed
from the repo). Give the id that 'warren tunnel ls' shows, --all, or filters
that must all match. Closing nothing is an error (exit status 1).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				id, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil || id == 0 {
					return fmt.Errorf("tunnel close: tunnel id %q: expected a positive integer from 'warren tunnel ls'", args[0])
				}
				f.ID = id
			}
			return call(e, func(cl *client.Client) error {
				res, err := cl.TunnelClose(cmd.Context(), f)
				if err != nil {
					return err
				}
				if res.Tunnels == 0 {
					return errors.New("tunnel close: no tunnel matched (see warren tunnel ls)")
				}
				e.printf("closed %d %s and %d %s\n", res.Tunnels, plural(res.Tunnels, "tunnel"), res.Streams, plural(res.Streams, "stream"))
				return nil
			})
		},
	}
	c.Flags().BoolVar(&f.All, "all", false, "close every tunnel")
	c.Flags().StringVar(&f.Protocol, "protocol", "", "close tunnels of this protocol")
	c.Flags().StringVar(&f.ListenAddress, "listen-address", "", "close tunnels listening on this multiaddr (a forward's local address, or /p2p/<own-id> for listeners)")
	c.Flags().StringVar(&f.TargetAddress, "target-address", "", "close tunnels with this target (a listener's target multiaddr, or a forward's peer as /p2p/<id>)")
	return c
}

func tunnelStreamsCmd(e *env) *cobra.Command {
	c := tunnelListCmd(e, "streams", "List active tunnelled connections", "no streams",
		(*client.Client).TunnelStreams, func(tw *tabwriter.Writer, ss []client.TunnelStreamInfo, wide bool) {
			fmt.Fprintln(tw, "ID\tTUNNEL\tKIND\tPROTOCOL\tPEER\tLOCAL\tREMOTE\tIN\tOUT\tAGE")
			now := time.Now()
			for _, s := range ss {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.TunnelID, s.Kind, s.Protocol, shortID(s.Peer, wide),
					shortAddr(s.LocalAddr, wide), shortAddr(s.RemoteAddr, wide), byteSize(s.BytesIn), byteSize(s.BytesOut), now.Sub(s.Opened).Round(time.Second))
			}
		})
	c.AddCommand(tunnelStreamsCloseCmd(e))
	return c
}

func tunnelStreamsCloseCmd(e *env) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "close <stream-id> | --all",
		Short: "Reset one tunnelled connection (ids from 'warren tunnel streams'), or all of them",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req client.TunnelStreamCloseRequest
			switch {
			case all && len(args) > 0:
				return errors.New("tunnel streams close: give a stream id or --all, not both")
			case all:
				req.All = true
			case len(args) == 0:
				return errors.New("tunnel streams close: expected a stream id (see 'warren tunnel streams') or --all")
			default:
				id, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil || id == 0 {
					return fmt.Errorf("tunnel streams close: stream id %q: expected a positive integer from 'warren tunnel streams'", args[0])
				}
				req.ID = id
			}
			return call(e, func(cl *client.Client) error {
				res, err := cl.TunnelCloseStreams(cmd.Context(), req)
				if err == nil {
					e.printf("closed %d %s\n", res.Streams, plural(res.Streams, "stream"))
				}
				return err
			})
		},
	}
	c.Flags().BoolVar(&all, "all", false, "reset every tunnelled connection")
	return c
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// byteSize prints a byte count with a binary unit.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
