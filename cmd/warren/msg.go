package main

import "github.com/spf13/cobra"

func msgCmds(e *env) []*cobra.Command { return nil }
