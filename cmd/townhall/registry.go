package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall/access"
)

// actionView is one action of registry validate's listing.
type actionView struct {
	Module     string   `json:"module"`
	Action     string   `json:"action"`
	Roles      []string `json:"roles"`
	ReadOnly   bool     `json:"read_only"`
	Affiliated bool     `json:"affiliated"`
}

func (a *app) registryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Work with registry files"}
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a registry file (no database); list its actions, or name the first error's place",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			reg, err := readRegistry(args[0])
			if err != nil {
				return err
			}
			return a.printRegistry(reg)
		},
	}
	cmd.AddCommand(validate)
	return cmd
}

func (a *app) printRegistry(reg *access.Registry) error {
	var actions []actionView
	var rows [][]string
	for _, m := range reg.Modules() {
		for _, name := range reg.Actions(m) {
			def, err := reg.Action(m, name)
			if err != nil {
				return err
			}
			actions = append(actions, actionView{m, name, def.Roles, def.ReadOnly, def.Affiliated})
			var flags []string
			if def.ReadOnly {
				flags = append(flags, "read_only")
			}
			if def.Affiliated {
				flags = append(flags, "affiliated")
			}
			rows = append(rows, []string{m, name, strings.Join(def.Roles, ", "), orDash(strings.Join(flags, ", "))})
		}
	}
	return a.print(map[string]any{"valid": true, "roles": reg.Roles(), "actions": actions}, "MODULE\tACTION\tROLES\tFLAGS", rows)
}
