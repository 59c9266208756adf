package main

import (
	"fmt"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
)

func initCmd(e *env) *cobra.Command {
	var profile string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repo: an Ed25519 identity and a documented config file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := e.repoDir()
			if err != nil {
				return err
			}
			r, err := config.Init(dir, profile)
			if err != nil {
				return err
			}
			id, err := peerIDOf(r)
			if err != nil {
				return err
			}
			e.printf("initialized warren repo at %s (profile %s)\npeer ID: %s\n", r.Dir, profile, id)
			return nil
		},
	}
	c.Flags().StringVar(&profile, "profile", config.ProfileDefault, "config profile: "+strings.Join(config.Profiles(), " or "))
	return c
}

func idCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "id",
		Short: "Show this node's peer ID and addresses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) (client.IDInfo, error) { return cl.ID(cmd.Context()) },
				func(id client.IDInfo) error {
					e.printf("%s\n", id.ID)
					for _, a := range id.Addrs {
						e.printf("  %s\n", a)
					}
					return nil
				})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func peersCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "peers",
		Short: "List connected peers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) ([]client.PeerInfo, error) { return cl.Peers(cmd.Context()) },
				func(peers []client.PeerInfo) error {
					tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "PEER\tADDRESS\tDIRECTION\tLATENCY")
					for _, p := range peers {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fms\n", p.ID, p.Addr, p.Direction, p.LatencyMS)
					}
					return tw.Flush()
				})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func connectCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "connect <multiaddr|peer-id>",
		Short: "Connect to a peer by multiaddr (ending in /p2p/<id>) or by peer ID alone (found through the DHT)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(e, func(cl *client.Client) error {
				res, err := cl.Connect(cmd.Context(), args[0])
				if err == nil {
					e.printf("connected to %s\n", res.ID)
				}
				return err
			})
		},
	}
}

func disconnectCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect <peer-id>",
		Short: "Close every connection to a peer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(e, func(cl *client.Client) error {
				err := cl.Disconnect(cmd.Context(), args[0])
				if err == nil {
					e.printf("disconnected from %s\n", args[0])
				}
				return err
			})
		},
	}
}

func pingCmd(e *env) *cobra.Command {
	var count int
	var asJSON bool
	c := &cobra.Command{
		Use:   "ping <peer-id>",
		Short: "Measure round trips to a peer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(e, asJSON, func(cl *client.Client) (client.PingResult, error) { return cl.Ping(cmd.Context(), args[0], count) },
				func(res client.PingResult) error {
					for i, ms := range res.RTTMS {
						e.printf("pong from %s: seq=%d time=%.3f ms\n", res.Peer, i+1, ms)
					}
					e.printf("average %.3f ms over %d pings\n", res.AvgMS, len(res.RTTMS))
					return nil
				})
		},
	}
	c.Flags().IntVarP(&count, "count", "n", 3, "number of pings (1 to 1000)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func versionCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print warren's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return e.printJSON(map[string]string{"version": warren.Version, "go": runtime.Version()})
			}
			e.printf("warren %s (%s)\n", warren.Version, runtime.Version())
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
