package main

import (
	"os"

	"github.com/spf13/cobra"
)

func pid() int { return os.Getpid() }

// addCapabilityCommands adds the commands of the capabilities built on the
// node (tunnels, messages, topics).
func addCapabilityCommands(root *cobra.Command, e *env) {}
