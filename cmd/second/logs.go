package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/local/stack"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:       "logs [SERVICE]",
		Short:     "Print (or follow) a service's log: " + strings.Join(stack.LogServices(), ", "),
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: stack.LogServices(),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.layout()
			if err != nil {
				return err
			}
			o := stack.LogsOptions{Layout: l, Lines: lines, Follow: follow, Out: cmd.OutOrStdout()}
			if len(args) == 1 {
				o.Service = args[0]
			}
			return stack.Logs(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "number of lines to show")
	return cmd
}
