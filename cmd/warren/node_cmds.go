package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

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
	var asJSON, wide bool
	c := &cobra.Command{
		Use:   "peers",
		Short: "List connected peers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) ([]client.PeerInfo, error) { return cl.Peers(cmd.Context()) },
				func(peers []client.PeerInfo) error {
					if len(peers) == 0 {
						e.printf("no peers\n")
						return nil
					}
					return printTable(e.stdout, wide, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, "PEER\tADDRESS\tDIRECTION\tLATENCY")
						for _, p := range peers {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fms\n", shortID(p.ID, wide), shortAddr(p.Addr, wide), p.Direction, p.LatencyMS)
						}
					})
				})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	wideFlag(c, &wide)
	return c
}

// shortAddr shortens the peer IDs inside a multiaddr (/p2p/<id>, relay
// addresses) for a table.
func shortAddr(a string, wide bool) string {
	if wide {
		return a
	}
	parts := strings.Split(a, "/")
	for i := 1; i < len(parts); i++ {
		if parts[i-1] == "p2p" {
			parts[i] = shortID(parts[i], false)
		}
	}
	return strings.Join(parts, "/")
}

func waitCmd(e *env) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the repo's daemon answers its API (after starting it in the background)",
		Long: `Block until the daemon on the repo answers its control API, then exit 0; exit 1
after --timeout. Scripts start 'warren daemon &' and then 'warren wait' before
their first command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var last error
			for {
				cl, err := e.client()
				if err == nil {
					_, err = cl.Health(ctx)
					_ = cl.Close()
					if err == nil {
						return nil
					}
				}
				last = err
				select {
				case <-ctx.Done():
					if cmd.Context().Err() != nil {
						return errInterrupted
					}
					return fmt.Errorf("the daemon did not answer within %s: %w", timeout, last)
				case <-time.After(50 * time.Millisecond):
				}
			}
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait")
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
					e.printf("average %.3f ms over %d %s\n", res.AvgMS, len(res.RTTMS), plural(len(res.RTTMS), "ping"))
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
