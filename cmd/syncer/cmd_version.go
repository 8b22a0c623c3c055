package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/syncer"
)

// versionLine is what `syncer version` and `syncer --version` print.
func versionLine() string {
	return fmt.Sprintf("syncer %s (%s, %s/%s)\n", syncer.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of syncer",
		Example: "  syncer version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}
