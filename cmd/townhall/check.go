package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall/access"
)

// subjectArg reads a USER argument: "-" (or "") is anonymous.
func subjectArg(s string) access.Subject {
	if s == "-" {
		return access.Anonymous()
	}
	return access.Subject{UserID: s}
}

// requestFlags build a Request from check's flags.
type requestFlags struct {
	municipality, location, category, organisation string
}

func (f *requestFlags) request(module, action string) access.Request {
	req := access.Request{Municipality: f.municipality, Module: module, Action: action}
	if f.location != "" || f.category != "" || f.organisation != "" {
		req.Resource = &access.Resource{LocationID: f.location, Category: f.category, OrganisationID: f.organisation}
	}
	return req
}

func (a *app) checkCommand() *cobra.Command {
	var f requestFlags
	var explain bool
	cmd := &cobra.Command{
		Use:   "check USER MODULE ACTION",
		Short: `Decide a request ("-" is anonymous); exit 0 when allowed, 5 when denied`,
		Long: `check decides whether USER may perform MODULE ACTION, exactly as
Checker.Check does. Without --location/--category/--organisation it is a gate
decision in --municipality; with them, a decision on a record there.
--explain prints every step of the decision and every grant with the
decision it gives on its own. USER "-" is anonymous.`,
		Args: usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			s, req := subjectArg(args[0]), f.request(args[1], args[2])
			ex := p.Checker.Explain(ctx, s, req)
			if ex.Err != nil {
				return ex.Err
			}
			if explain {
				err = a.printExplanation(ex)
			} else {
				d := ex.Decision
				err = a.print(d, "ALLOWED\tREASON\tROLE\tDOMAIN", [][]string{{yesNo(d.Allowed), string(d.Reason), orDash(d.Role), orDash(d.Domain)}})
			}
			if err != nil {
				return err
			}
			if !ex.Decision.Allowed {
				return errNo
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.municipality, "municipality", "", "municipality ID (with a record: optional)")
	cmd.Flags().StringVar(&f.location, "location", "", "the record's location ID")
	cmd.Flags().StringVar(&f.category, "category", "", "the record's category")
	cmd.Flags().StringVar(&f.organisation, "organisation", "", "the record's organisation ID (affiliated actions)")
	cmd.Flags().BoolVar(&explain, "explain", false, "print the steps and the grants considered")
	return cmd
}

// explanationView is check --explain --json.
type explanationView struct {
	Decision access.Decision       `json:"decision"`
	Steps    []access.Step         `json:"steps"`
	Grants   []access.GrantOutcome `json:"grants"`
}

func (a *app) printExplanation(ex access.Explanation) error {
	if a.json {
		return a.print(explanationView{ex.Decision, ex.Steps, ex.Grants}, "", nil)
	}
	_, err := fmt.Fprint(a.stdout, ex.String())
	return err
}

func (a *app) whoCanCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "who-can MODULE ACTION LOCATION",
		Short: "List the users Check allows MODULE ACTION on a record at LOCATION (Checker.Subjects)",
		Args:  usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			ids, err := p.Checker.Subjects(ctx, args[0], args[1], args[2])
			if err != nil {
				return err
			}
			rows := make([][]string, len(ids))
			for i, id := range ids {
				rows[i] = []string{id}
			}
			if ids == nil {
				ids = []string{}
			}
			return a.print(ids, "USER", rows)
		},
	}
}

func (a *app) whatCanCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "what-can USER MUNICIPALITY",
		Short: `List the module actions Check allows USER in MUNICIPALITY ("-" is anonymous; Checker.Permissions)`,
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			perms, err := p.Checker.Permissions(ctx, subjectArg(args[0]), args[1])
			if err != nil {
				return err
			}
			rows := make([][]string, len(perms))
			for i, ma := range perms {
				rows[i] = []string{ma.Module, ma.Action}
			}
			if perms == nil {
				perms = []access.ModuleAction{}
			}
			return a.print(perms, "MODULE\tACTION", rows)
		},
	}
}
