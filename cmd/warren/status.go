package main

// warren status: why this node can or cannot be reached.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/client"
)

func statusCmd(e *env) *cobra.Command {
	var asJSON, wide bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Say whether and how other peers can reach this node, and how each peer is connected",
		Long: `status tells whether this node is publicly reachable and how that was learnt,
the addresses it listens on, announces and is seen on, the port mapping, the
relays it holds a reservation on, its hole punches, and for each connected peer
whether the connection is direct or relayed. --json prints GET /v1/status.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(e, asJSON, func(cl *client.Client) (client.Status, error) { return cl.Status(cmd.Context()) },
				func(st client.Status) error { return printStatus(e.stdout, st, time.Now(), wide) })
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&wide, "wide", false, "show other peers' IDs in full")
	return c
}

// printStatus writes the status for a person: a verdict first, then the
// facts it rests on. Other peers' IDs are shortened unless wide, as in
// every table of the CLI; the node's own stays whole, to be copied.
func printStatus(w io.Writer, st client.Status, now time.Time, wide bool) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("peer %s  (network %s, %s, up %s)\n", st.ID, st.Network, st.Agent, (time.Duration(st.UptimeS) * time.Second).String())
	if st.PublicNetwork {
		p("public network: joined (Amino DHT); this node's peer ID and addresses are findable by anyone\n")
	} else {
		p("public network: off (only this node's own bootstrap peers and DHT)\n")
	}
	p("\n")
	for _, line := range verdict(st) {
		p("%s\n", line)
	}
	p("\nreachability: %s (%s)\n", st.Reachability, sourceText(st.ReachabilitySource))
	if len(st.NATTypes) > 0 {
		var kinds []string
		for _, proto := range []string{"tcp", "udp"} {
			if k, ok := st.NATTypes[proto]; ok {
				kinds = append(kinds, proto+" "+k)
			}
		}
		p("NAT type:     %s\n", strings.Join(kinds, ", "))
	}
	pm := st.PortMapping.State
	if len(st.PortMapping.Mapped) > 0 {
		pm += ": " + strings.Join(st.PortMapping.Mapped, " ")
	}
	if st.PortMapping.Error != "" {
		pm += " (" + st.PortMapping.Error + ")"
	}
	if st.PortMapping.State == "off" {
		pm += " ([swarm] nat_port_map = false)"
	}
	p("port mapping: %s\n", pm)
	list := func(name string, addrs []string) {
		p("%s:\n", name)
		if len(addrs) == 0 {
			p("  (none)\n")
		}
		for _, a := range addrs {
			p("  %s\n", a)
		}
	}
	list("listening on", st.ListenAddrs)
	list("announced", st.AnnouncedAddrs)
	list("seen by peers as", st.ObservedAddrs)
	p("relay reservations:\n")
	if len(st.Relays) == 0 {
		p("  (none)\n")
	}
	for _, r := range st.Relays {
		exp := "expiry unknown"
		if !r.Expires.IsZero() {
			exp = "expires in " + r.Expires.Sub(now).Round(time.Second).String()
		}
		p("  %s  %s\n", shortID(r.Relay, wide), exp)
		for _, a := range r.Addrs {
			p("    %s\n", a)
		}
	}
	hp := st.HolePunch
	p("hole punches: %d attempts, %d succeeded, %d failed\n", hp.Attempts, hp.Successes, hp.Failures)
	for _, a := range hp.Recent {
		line := fmt.Sprintf("  %s  %s  %s  %.0fms", a.Time.Format(time.TimeOnly), shortID(a.Peer, wide), a.Outcome, a.DurationMS)
		if a.Error != "" {
			line += "  " + a.Error
		}
		p("%s\n", line)
	}
	p("\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tCONNECTION\tTRANSPORT\tRTT\tIN\tOUT")
	for _, pr := range st.Peers {
		how := "direct"
		if !pr.Direct {
			how = "relayed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fms\t%s\t%s\n", shortID(pr.ID, wide), how, pr.Transport, pr.LatencyMS, byteCount(pr.BytesIn), byteCount(pr.BytesOut))
	}
	return tw.Flush()
}

// verdict says in a few lines whether peers can reach this node, why, and
// what would help.
func verdict(st client.Status) []string {
	symmetric := false
	for _, k := range st.NATTypes {
		symmetric = symmetric || k == "symmetric"
	}
	var out []string
	switch st.Reachability {
	case "public":
		out = append(out, "Peers can dial this node directly on its announced addresses.")
	case "private":
		out = append(out, "This node is behind NAT: peers cannot dial it directly.")
		if len(st.Relays) > 0 {
			out = append(out, fmt.Sprintf("It is reachable through %d relay(s) by its peer ID; a relayed connection is upgraded to a direct one by hole punching.", len(st.Relays)))
		} else {
			out = append(out, "It holds no relay reservation, so peers cannot reach it: connect it to a peer that runs relay_service (a bootstrap peer, or the public network with [discovery] public_network = true), or list one in [swarm] static_relays.")
		}
		if symmetric {
			out = append(out, "Its NAT is symmetric (a new port for each destination): hole punching cannot work here. Data then needs a relay whose limits allow it (a relay of your own: relay_service with a raised [swarm.relay_limit]), a port mapping on the router, or an address in [addresses] announce.")
		} else if st.HolePunch.Failures > 0 && st.HolePunch.Successes == 0 {
			out = append(out, "No hole punch has succeeded yet: if it keeps failing, use a relay of your own (relay_service with a raised [swarm.relay_limit]), a port mapping, or [addresses] announce.")
		}
	default:
		if len(st.Peers) == 0 {
			out = append(out, "Reachability is not known yet: this node has no peers to ask. Add peers to [discovery] bootstrap, or join the public network ([discovery] public_network = true).")
		} else {
			out = append(out, "Reachability is not known yet: AutoNAT has not heard back from enough peers (or [swarm] autonat is off).")
		}
	}
	switch st.PortMapping.State {
	case "mapped":
		out = append(out, "The router mapped a port for it (UPnP/NAT-PMP).")
	case "failed":
		if st.Reachability == "private" {
			out = append(out, "The router gave no port mapping ("+st.PortMapping.Error+").")
		}
	}
	return out
}

func sourceText(s string) string {
	switch s {
	case "autonat":
		return "probed by peers through AutoNAT"
	case "config":
		return "set by [swarm] reachability"
	}
	return "not learnt yet"
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
