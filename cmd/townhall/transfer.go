package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall/access"
)

func (a *app) exportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the access data (no secrets) as one versioned JSON document to stdout or --out",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			doc, err := p.Admin.Export(ctx)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return access.WriteDocument(a.stdout, doc)
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if err := access.WriteDocument(f, doc); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	return cmd
}

func (a *app) importCommand() *cobra.Command {
	var merge bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: `Import a document written by export, in one transaction, as the system ("-" reads stdin)`,
		Long: `import writes a document written by export into the database in one
transaction: all of it or nothing. A database that already holds users,
locations or organisations is refused unless --merge is given, which adds
only what the database lacks.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var r io.Reader = a.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			doc, err := access.ReadDocument(r)
			if err != nil {
				return err
			}
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			if err := p.Admin.Import(ctx, access.System(), doc, access.ImportOptions{Merge: merge}); err != nil {
				return err
			}
			return a.done(map[string]any{"imported": true, "users": len(doc.Users), "locations": len(doc.Locations), "grants": len(doc.Grants)},
				"imported %d locations, %d users, %d grants", len(doc.Locations), len(doc.Users), len(doc.Grants))
		},
	}
	cmd.Flags().BoolVar(&merge, "merge", false, "import into a database that is not empty, adding what it lacks")
	return cmd
}
