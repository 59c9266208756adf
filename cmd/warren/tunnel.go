package main

import "github.com/spf13/cobra"

func tunnelCmds(e *env) []*cobra.Command { return nil }
