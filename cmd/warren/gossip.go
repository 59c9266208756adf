package main

import "github.com/spf13/cobra"

func gossipCmds(e *env) []*cobra.Command { return nil }
