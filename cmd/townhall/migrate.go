package main

import "github.com/spf13/cobra"

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade townhall's tables (idempotent; as the system)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.platform(cmd.Context())
			if err != nil {
				return err
			}
			rev, err := p.Audit.Head(cmd.Context())
			if err != nil {
				return err
			}
			return a.done(map[string]any{"migrated": true, "revision": rev}, "migrated (revision %d)", rev)
		},
	}
}
