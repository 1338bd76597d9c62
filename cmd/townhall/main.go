// Command townhall bootstraps, administers, explains and verifies a
// townhall platform from a shell.
//
// Install it with
//
//	go install github.com/civicstack/townhall/cmd/townhall@latest
//
// The database comes from --db or TOWNHALL_DB: a file path (embedded
// SQLite; default townhall.db), a postgres:// (or postgresql://) URL, or a
// mysql://user:password@host:port/database URL. The registry comes from
// --registry FILE (default access.DefaultRegistry()); every process on one
// database must run the same registry, since opening rewrites the compiled
// policy rows when they differ.
//
// Changes act through access.Admin as the user named by --as (or
// TOWNHALL_AS), so a refusal is a refusal, audited like any other. Only
// migrate, superadmin create and import act as access.System().
//
// Output is a human table by default and JSON with --json. Exit codes:
//
//	0  success; for check: allowed
//	1  internal error (database, file)
//	2  usage error or invalid input
//	3  refused: the acting user may not make this change
//	4  not found
//	5  no: check denied, a policy test failed, the audit chain is tampered
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitForbidden = 3
	exitNotFound  = 4
	exitNo        = 5
)

// errNo marks an answer that is "no" (a denied check, a failed policy
// test, a tampered chain) rather than a failure to answer.
var errNo = errors.New("no")

// errUsage marks a command line that cannot be run.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	app.close()
	if err == nil {
		return exitOK
	}
	if !errors.Is(err, errNo) {
		fmt.Fprintln(stderr, "townhall:", err)
	}
	return exitCode(err)
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNo), errors.Is(err, audit.ErrTampered):
		return exitNo
	case errors.Is(err, access.ErrForbidden):
		return exitForbidden
	case errors.Is(err, users.ErrNotFound), errors.Is(err, location.ErrNotFound), errors.Is(err, affiliation.ErrNotFound):
		return exitNotFound
	case errors.Is(err, errUsage), errors.Is(err, access.ErrInvalidInput), errors.Is(err, access.ErrUnknownModule),
		errors.Is(err, access.ErrUnknownAction), errors.Is(err, access.ErrUnknownRole), errors.Is(err, users.ErrInvalidInput),
		errors.Is(err, users.ErrDuplicate), errors.Is(err, location.ErrInvalidInput), errors.Is(err, location.ErrInvalidLevel),
		errors.Is(err, location.ErrDuplicate), errors.Is(err, location.ErrCycle), errors.Is(err, affiliation.ErrInvalidInput),
		errors.Is(err, affiliation.ErrDuplicate), errors.Is(err, audit.ErrInvalidInput), errors.Is(err, townhall.ErrInvalidInput):
		return exitUsage
	}
	return exitError
}

// app holds the global flags and the platform opened for one command.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	db       string
	registry string
	as       string
	json     bool

	p *townhall.Platform
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "townhall",
		Short: "Operate a townhall platform: bootstrap, administer, explain, verify",
		Long: `townhall operates a townhall access-management platform from a shell.

The database comes from --db or TOWNHALL_DB: a file path (embedded SQLite,
default townhall.db), postgres://... or mysql://user:pass@host:port/db.
Changes act through Admin as --as USER (or TOWNHALL_AS); refusals are
refusals. Only migrate, superadmin create and import act as the system.

Exit codes: 0 success (check: allowed), 1 internal error, 2 usage or
invalid input, 3 refused, 4 not found, 5 no (check denied, policy test
failed, audit chain tampered).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errUsage, err) })
	f := root.PersistentFlags()
	f.StringVar(&a.db, "db", envOr("TOWNHALL_DB", "townhall.db"), "database: a SQLite file path, postgres://... or mysql://... (env TOWNHALL_DB)")
	f.StringVar(&a.registry, "registry", os.Getenv("TOWNHALL_REGISTRY"), "registry file, YAML or JSON (env TOWNHALL_REGISTRY; default: the built-in registry)")
	f.StringVar(&a.as, "as", os.Getenv("TOWNHALL_AS"), "the user changes act as (env TOWNHALL_AS)")
	f.BoolVar(&a.json, "json", false, "print JSON instead of tables")
	root.AddCommand(
		a.migrateCommand(), a.superadminCommand(), a.userCommand(), a.locationCommand(),
		a.memberCommand(), a.approveCommand(), a.grantCommand(), a.revokeCommand(),
		a.checkCommand(), a.whoCanCommand(), a.whatCanCommand(),
		a.auditCommand(), a.registryCommand(), a.policyCommand(),
		a.exportCommand(), a.importCommand(),
	)
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// usageArgs wraps cobra's argument validators so that wrong arguments exit
// with the usage code.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		return nil
	}
}

func (a *app) close() {
	if a.p != nil {
		if err := a.p.Close(); err != nil {
			fmt.Fprintln(a.stderr, "townhall: close:", err)
		}
		a.p = nil
	}
}
