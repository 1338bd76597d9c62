package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/location"
)

func (a *app) locationCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "location", Short: "Create, move and list locations"}
	var name, parent string
	create := a.adminCommand("create ID LEVEL", "Create a location (needs locations:manage)", 2,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := mayUse(ctx, p, actor, access.ModuleLocations, "manage"); err != nil {
				return nil, "", err
			}
			l, err := p.Locations.Create(access.WithSubject(ctx, actor), location.Location{ID: args[0], Name: name, Level: args[1], ParentID: parent})
			if err != nil {
				return nil, "", err
			}
			return l, fmt.Sprintf("location %s (%s) created", l.ID, l.Level), nil
		})
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&parent, "parent", "", "parent location ID")
	move := a.adminCommand("move ID NEW_PARENT", `Move a location and its subtree ("" makes it top-level; Admin.MoveLocation)`, 2,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := p.Admin.MoveLocation(ctx, actor, args[0], args[1]); err != nil {
				return nil, "", err
			}
			return map[string]any{"location": args[0], "parent": args[1]}, fmt.Sprintf("%s moved under %s", args[0], orDash(args[1])), nil
		})
	tree := &cobra.Command{
		Use:   "tree [ROOT]",
		Short: "Print the location tree (or one subtree)",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.printTree(cmd.Context(), args)
		},
	}
	cmd.AddCommand(create, move, tree)
	return cmd
}

// treeNode is one location of location tree --json.
type treeNode struct {
	location.Location
	Children []*treeNode `json:"children,omitempty"`
}

func (a *app) printTree(ctx context.Context, args []string) error {
	p, err := a.platform(ctx)
	if err != nil {
		return err
	}
	t, err := p.Locations.LoadTree(ctx)
	if err != nil {
		return err
	}
	roots := t.Roots()
	if len(args) == 1 {
		if _, ok := t.Get(args[0]); !ok {
			return fmt.Errorf("%w: %q", location.ErrNotFound, args[0])
		}
		roots = []string{args[0]}
	}
	var rows [][]string
	var build func(id string, depth int) *treeNode
	build = func(id string, depth int) *treeNode {
		l, _ := t.Get(id)
		n := &treeNode{Location: l}
		rows = append(rows, []string{strings.Repeat("  ", depth) + l.ID, l.Level, l.Name})
		for _, c := range t.Children(id) {
			n.Children = append(n.Children, build(c, depth+1))
		}
		return n
	}
	nodes := []*treeNode{}
	for _, r := range roots {
		nodes = append(nodes, build(r, 0))
	}
	return a.print(nodes, "LOCATION\tLEVEL\tNAME", rows)
}
