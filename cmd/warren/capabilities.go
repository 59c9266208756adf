package main

import (
	"os"

	"github.com/spf13/cobra"
)

func pid() int { return os.Getpid() }

// addCapabilityCommands adds the commands of the capabilities built on the
// node; each keeps its commands in its own file.
func addCapabilityCommands(root *cobra.Command, e *env) {
	root.AddCommand(msgCmds(e)...)
	root.AddCommand(gossipCmds(e)...)
	root.AddCommand(tunnelCmds(e)...)
	root.AddCommand(webuiCmd(e))
}
