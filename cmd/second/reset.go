package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/second-inc/second-release/internal/local/stack"
)

func newResetCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Stop Second and delete its data, secrets and state (asks first unless --yes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.layout()
			if err != nil {
				return err
			}
			o := stack.ResetOptions{Layout: l, Out: cmd.OutOrStdout()}
			if !yes {
				o.Confirm = func(what []string) (bool, error) {
					return askYes(cmd, fmt.Sprintf("This stops Second and permanently deletes:\n  %s\nContinue? [y/N] ", strings.Join(what, "\n  ")),
						"reset deletes all local data and needs confirmation: run it in a terminal, or pass --yes")
				}
			}
			return stack.Reset(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// askYes asks question at the terminal; without one it refuses with noTerminal.
func askYes(cmd *cobra.Command, question, noTerminal string) (bool, error) {
	if !isTerminal(os.Stdin) {
		return false, errors.New(noTerminal)
	}
	fmt.Fprint(cmd.OutOrStdout(), question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}
