package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/users"
)

// userFlags are the fields of a new user.
type userFlags struct {
	id, email, first, last string
	technical, staff       bool
	passwordStdin          bool
}

func (f *userFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.id, "id", "", "user ID (default: the username)")
	cmd.Flags().StringVar(&f.email, "email", "", "email address")
	cmd.Flags().StringVar(&f.first, "first-name", "", "first name")
	cmd.Flags().StringVar(&f.last, "last-name", "", "last name")
}

func (f *userFlags) newUser(username string) users.NewUser {
	id := f.id
	if id == "" {
		id = username
	}
	u := users.NewUser{ID: id, Username: username, Email: f.email, FirstName: f.first, LastName: f.last, IsStaff: f.staff}
	if f.technical {
		u.Kind = users.Technical
	}
	return u
}

// readPassword prompts twice, without echo, when stdin is a terminal;
// otherwise it reads the first line of stdin. Passwords are never taken
// from arguments: those end up in shell histories and process lists.
func (a *app) readPassword() (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(a.stderr, "Password (again): ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		if string(pw) != string(again) {
			return "", fmt.Errorf("%w: the passwords differ", errUsage)
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("%w: no password on stdin", errUsage)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (a *app) superadminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "superadmin", Short: "Manage super admins"}
	var f userFlags
	create := &cobra.Command{
		Use:   "create USERNAME",
		Short: "Create the first (or another) super admin, as the system; the password comes from a prompt or stdin",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pw, err := a.readPassword()
			if err != nil {
				return err
			}
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			nu := f.newUser(args[0])
			nu.Password = pw
			u, err := p.Users.Create(access.WithSubject(ctx, access.System()), nu)
			if err != nil {
				return err
			}
			if err := p.Admin.SetSuperAdmin(ctx, access.System(), u.ID, true); err != nil {
				return err
			}
			u.IsSuperAdmin = true
			return a.done(u, "super admin %s created", u.ID)
		},
	}
	f.bind(create)
	cmd.AddCommand(create)
	return cmd
}

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Create, show and deactivate users"}
	var f userFlags
	create := a.adminCommand("create USERNAME", "Create a user (needs users:manage somewhere); --password-stdin reads a password", 1,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := mayUse(ctx, p, actor, access.ModuleUsers, "manage"); err != nil {
				return nil, "", err
			}
			nu := f.newUser(args[0])
			if f.passwordStdin {
				var err error
				if nu.Password, err = a.readPassword(); err != nil {
					return nil, "", err
				}
			}
			u, err := p.Users.Create(access.WithSubject(ctx, actor), nu)
			if err != nil {
				return nil, "", err
			}
			return u, fmt.Sprintf("user %s created", u.ID), nil
		})
	f.bind(create)
	create.Flags().BoolVar(&f.technical, "technical", false, "a technical (machine) user: never a password, never a super admin")
	create.Flags().BoolVar(&f.staff, "staff", false, "mark the user as staff")
	create.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read a password from stdin (or a prompt)")

	show := &cobra.Command{
		Use:   "show USER",
		Short: "Show a user with profiles and grants",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.showUser(cmd.Context(), args[0])
		},
	}
	var activate bool
	deactivate := a.adminCommand("deactivate USER", "Deactivate a user (Admin.SetUserActive); --undo reactivates", 1,
		func(ctx context.Context, p *townhall.Platform, actor access.Subject, args []string) (any, string, error) {
			if err := p.Admin.SetUserActive(ctx, actor, args[0], activate); err != nil {
				return nil, "", err
			}
			return map[string]any{"user": args[0], "active": activate}, fmt.Sprintf("user %s active: %s", args[0], yesNo(activate)), nil
		})
	deactivate.Flags().BoolVar(&activate, "undo", false, "reactivate instead")
	cmd.AddCommand(create, show, deactivate)
	return cmd
}

// userView is what user show prints.
type userView struct {
	*users.User
	Profiles []users.Profile `json:"profiles"`
	Grants   []grantView     `json:"grants"`
}

type grantView struct {
	Role     string `json:"role"`
	Location string `json:"location"`
}

func (a *app) showUser(ctx context.Context, id string) error {
	p, err := a.platform(ctx)
	if err != nil {
		return err
	}
	u, err := p.Users.Get(ctx, id)
	if err != nil {
		return err
	}
	profiles, err := p.Profiles.ListForUser(ctx, id)
	if err != nil {
		return err
	}
	grants, err := userGrants(ctx, p, id)
	if err != nil {
		return err
	}
	v := userView{User: u, Profiles: profiles, Grants: grants}
	rows := [][]string{
		{"id", u.ID}, {"username", u.Username}, {"email", orDash(u.Email)},
		{"name", orDash(strings.TrimSpace(u.FirstName + " " + u.LastName))}, {"kind", string(u.Kind)},
		{"active", yesNo(u.IsActive)}, {"staff", yesNo(u.IsStaff)}, {"super admin", yesNo(u.IsSuperAdmin)},
	}
	for _, pr := range profiles {
		rows = append(rows, []string{"profile", fmt.Sprintf("%s approved=%s active=%s department=%s categories=%s",
			pr.LocationID, yesNo(pr.IsApproved), yesNo(pr.IsActive), orDash(pr.DepartmentID), orDash(strings.Join(pr.AllowedCategories, ",")))})
	}
	for _, g := range grants {
		rows = append(rows, []string{"grant", g.Role + " at " + g.Location})
	}
	return a.print(v, "", rows)
}
