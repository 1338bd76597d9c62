package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/policy"
)

// userGrants reads a user's grants from the casbin_rule rows, the policy
// of record.
func userGrants(ctx context.Context, p *townhall.Platform, userID string) ([]grantView, error) {
	grants, err := policy.GrantsOf(ctx, p.DB(), userID)
	if err != nil {
		return nil, err
	}
	out := []grantView{}
	for _, g := range grants {
		out = append(out, grantView{Role: g.Role, Location: g.Domain})
	}
	return out, nil
}

// adminCommand builds a command that runs one Admin change as --as.
func (a *app) adminCommand(use, short string, n int, change func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(cobra.ExactArgs(n)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			actor, err := a.actor(ctx, p)
			if err != nil {
				return err
			}
			v, msg, err := change(ctx, p, actor, args)
			if err != nil {
				return err
			}
			return a.done(v, "%s", msg)
		},
	}
}

func (a *app) memberCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "Manage memberships (profiles)"}
	var department, categories string
	add := a.adminCommand("add USER LOCATION ROLE", "Add a membership with its first grant (Admin.AddMember)", 3,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			m := access.Membership{UserID: args[0], LocationID: args[1], Role: args[2], DepartmentID: department}
			if categories != "" {
				m.AllowedCategories = strings.Split(categories, ",")
			}
			prof, err := p.Admin.AddMember(ctx, actor, m)
			if err != nil {
				return nil, "", err
			}
			state := "approved"
			if !prof.IsApproved {
				state = "awaiting approval"
			}
			return prof, fmt.Sprintf("%s is a member at %s as %s (%s)", args[0], args[1], args[2], state), nil
		})
	add.Flags().StringVar(&department, "department", "", "department ID")
	add.Flags().StringVar(&categories, "categories", "", "allowed categories, comma-separated (default: all)")
	cmd.AddCommand(add)
	return cmd
}

func (a *app) approveCommand() *cobra.Command {
	return a.adminCommand("approve USER LOCATION", "Approve a membership (Admin.Approve)", 2,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := p.Admin.Approve(ctx, actor, args[0], args[1]); err != nil {
				return nil, "", err
			}
			return map[string]any{"user": args[0], "location": args[1], "approved": true},
				fmt.Sprintf("%s approved at %s", args[0], args[1]), nil
		})
}

func (a *app) grantCommand() *cobra.Command {
	return a.adminCommand("grant USER ROLE LOCATION", `Grant a role at a location, or platform-wide at "*" (Admin.Grant)`, 3,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := p.Admin.Grant(ctx, actor, args[0], args[1], args[2]); err != nil {
				return nil, "", err
			}
			return grantView{Role: args[1], Location: args[2]}, fmt.Sprintf("granted %s to %s at %s", args[1], args[0], args[2]), nil
		})
}

func (a *app) revokeCommand() *cobra.Command {
	return a.adminCommand("revoke USER ROLE LOCATION", "Revoke a role (Admin.Revoke)", 3,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := p.Admin.Revoke(ctx, actor, args[0], args[1], args[2]); err != nil {
				return nil, "", err
			}
			return grantView{Role: args[1], Location: args[2]}, fmt.Sprintf("revoked %s from %s at %s", args[1], args[0], args[2]), nil
		})
}
