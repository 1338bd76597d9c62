package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbtest"
)

// binary is the townhall command, built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "townhall-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "townhall")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build townhall:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Every test runs in parallel with the others: each has its own database
// and directory, and most of its time is spent waiting on processes (on
// PostgreSQL and MariaDB each run opens, and so migrates, the platform).

// cli runs the binary on one fresh database (SQLite, PostgreSQL or MariaDB,
// as internal/dbtest chooses) from a fresh working directory.
type cli struct {
	t   *testing.T
	db  *gorm.DB // the same database, for tests that look under the hood
	dsn string   // as --db takes it
	dir string
}

func newCLI(t *testing.T) *cli {
	db, dsn := dbtest.NewWithDSN(t)
	return &cli{t: t, db: db, dsn: dbFlag(t, dsn), dir: t.TempDir()}
}

// dbFlag turns internal/dbtest's DSN into the URL forms --db takes.
func dbFlag(t *testing.T, dsn string) string {
	switch dbtest.Name() {
	case "postgres":
		if strings.HasPrefix(dsn, "postgres") {
			return dsn
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(dsn) {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		u := url.URL{Scheme: "postgres", Host: kv["host"] + ":" + cmpOr(kv["port"], "5432"), Path: "/" + kv["dbname"]}
		if kv["password"] != "" {
			u.User = url.UserPassword(kv["user"], kv["password"])
		} else {
			u.User = url.User(kv["user"])
		}
		q := url.Values{}
		for _, k := range []string{"sslmode", "search_path"} {
			if kv[k] != "" {
				q.Set(k, kv[k])
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	case "mysql":
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + cfg.DBName}
		if cfg.Passwd != "" {
			u.User = url.UserPassword(cfg.User, cfg.Passwd)
		} else {
			u.User = url.User(cfg.User)
		}
		return u.String()
	}
	return dsn
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// run runs townhall with args (and --db), stdin as given.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(binary, append([]string{"--db", c.dsn}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "TOWNHALL_DB=", "TOWNHALL_AS=", "TOWNHALL_REGISTRY=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(c.t, err)
	}
	return result{out.String(), errOut.String(), code}
}

// ok runs and requires exit 0.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	require.Equal(c.t, 0, r.code, "townhall %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

// json runs with --json, requires exit 0 and decodes stdout into v.
func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append([]string{"--json"}, args...)...)
	require.NoError(c.t, json.Unmarshal([]byte(out), v), out)
}

// platform bootstraps: a super admin root, region north, municipality
// riverton, and olga, an approved operator there.
func (c *cli) platform() {
	c.t.Helper()
	r := c.run("correct horse battery\n", "superadmin", "create", "root")
	require.Equal(c.t, 0, r.code, r.stderr)
	c.ok("--as", "root", "location", "create", "north", "region")
	c.ok("--as", "root", "location", "create", "riverton", "municipality", "--parent", "north")
	c.ok("--as", "root", "user", "create", "olga")
	c.ok("--as", "root", "member", "add", "olga", "riverton", "operator")
	c.ok("--as", "root", "approve", "olga", "riverton")
}

// The README's quickstart, step by step: an empty directory to a super
// admin, a municipality, a member and a passing policy test.
func TestCLI_QuickstartFromAnEmptyDirectory(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	assert.Contains(t, c.ok("migrate"), "migrated")
	c.platform()
	out := c.ok("check", "olga", "occurrences", "update", "--municipality", "riverton")
	assert.Contains(t, out, "yes")
	assert.Contains(t, out, "operator")

	policy := filepath.Join(c.dir, "riverton.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`
locations:
  - {id: north, level: region}
  - {id: riverton, level: municipality, parent: north}
users:
  - {id: olga}
members:
  - {user: olga, location: riverton, role: operator}
checks:
  - {user: olga, municipality: riverton, module: occurrences, action: update, allow: true, reason: role}
  - {user: olga, municipality: riverton, module: occurrences, action: assign, allow: false}
`), 0o600))
	assert.Contains(t, c.ok("policy", "test", policy), "ok "+policy+": 2 passed, 0 failed")
}

func TestCLI_SuperadminPasswordComesOnlyFromStdin(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	r := c.run("", "superadmin", "create", "root")
	assert.Equal(t, 2, r.code, "no password on stdin")
	r = c.run("short\n", "superadmin", "create", "root")
	assert.Equal(t, 2, r.code, "a password under 8 characters: %s", r.stderr)
	r = c.run("", "superadmin", "create", "root", "--password", "correct horse battery")
	assert.Equal(t, 2, r.code, "there is no password flag")
	r = c.run("correct horse battery\n", "superadmin", "create", "root")
	require.Equal(t, 0, r.code, r.stderr)
	var u map[string]any
	c.json(&u, "user", "show", "root")
	assert.Equal(t, true, u["IsSuperAdmin"])
	assert.NotContains(t, c.ok("export"), "correct horse battery")
}

func TestCLI_UserShowAndDeactivate(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.platform()
	var u struct {
		ID       string
		IsActive bool
		Profiles []map[string]any `json:"profiles"`
		Grants   []map[string]any `json:"grants"`
	}
	c.json(&u, "user", "show", "olga")
	assert.Equal(t, "olga", u.ID)
	assert.True(t, u.IsActive)
	require.Len(t, u.Profiles, 1)
	assert.Equal(t, []map[string]any{{"role": "operator", "location": "riverton"}}, u.Grants)

	assert.Equal(t, 4, c.run("", "user", "show", "nobody").code)
	assert.Equal(t, 2, c.run("", "user", "deactivate", "olga").code, "changes need --as")
	c.ok("--as", "root", "user", "deactivate", "olga")
	r := c.run("", "check", "olga", "occurrences", "view", "--municipality", "riverton")
	assert.Equal(t, 5, r.code)
	assert.Contains(t, r.stdout, "user_inactive")
	c.ok("--as", "root", "user", "deactivate", "olga", "--undo")
	c.ok("check", "olga", "occurrences", "view", "--municipality", "riverton")
	assert.Equal(t, 3, c.run("", "--as", "olga", "user", "create", "eve").code, "olga may not manage users")
}

func TestCLI_LocationCreateMoveTree(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.platform()
	c.ok("--as", "root", "location", "create", "south", "region")
	c.ok("--as", "root", "location", "create", "hill", "village", "--parent", "riverton")
	assert.Equal(t, 2, c.run("", "--as", "root", "location", "create", "bad", "planet").code, "unknown level")
	assert.Equal(t, 3, c.run("", "--as", "olga", "location", "create", "x", "region").code)
	c.ok("--as", "root", "location", "move", "riverton", "south")
	var tree []struct {
		ID       string
		Children []struct{ ID string } `json:"children"`
	}
	c.json(&tree, "location", "tree")
	require.Len(t, tree, 2)
	assert.Equal(t, "north", tree[0].ID)
	assert.Empty(t, tree[0].Children)
	assert.Equal(t, "south", tree[1].ID)
	require.Len(t, tree[1].Children, 1)
	assert.Equal(t, "riverton", tree[1].Children[0].ID)
	assert.Contains(t, c.ok("location", "tree", "riverton"), "  hill")
	assert.Equal(t, 4, c.run("", "location", "tree", "nowhere").code)
}

func TestCLI_GrantAndRevokeThroughAdmin(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.platform()
	assert.Equal(t, 5, c.run("", "check", "olga", "occurrences", "assign", "--municipality", "riverton").code)
	r := c.run("", "--as", "olga", "grant", "olga", "manager", "riverton")
	assert.Equal(t, 3, r.code, "an operator cannot grant herself manager")
	assert.Contains(t, r.stderr, "forbidden")
	c.ok("--as", "root", "grant", "olga", "manager", "riverton")
	c.ok("check", "olga", "occurrences", "assign", "--municipality", "riverton")
	c.ok("--as", "root", "revoke", "olga", "manager", "riverton")
	assert.Equal(t, 5, c.run("", "check", "olga", "occurrences", "assign", "--municipality", "riverton").code)
	assert.Equal(t, 2, c.run("", "--as", "root", "grant", "olga", "no_such_role", "riverton").code)
	assert.Equal(t, 2, c.run("", "--as", "root", "grant", "olga", "manager").code, "missing argument")

	// A membership awaiting approval counts after approve.
	c.ok("--as", "root", "location", "create", "lakeside", "municipality", "--parent", "north")
	assert.Contains(t, c.ok("--as", "root", "member", "add", "olga", "lakeside", "manager", "--categories", "roads"), "awaiting approval")
	r = c.run("", "check", "olga", "occurrences", "assign", "--municipality", "lakeside")
	assert.Contains(t, r.stdout, "profile_not_approved")
	c.ok("--as", "root", "approve", "olga", "lakeside")
	c.ok("check", "olga", "occurrences", "assign", "--location", "lakeside", "--category", "roads")
	assert.Equal(t, 5, c.run("", "check", "olga", "occurrences", "assign", "--location", "lakeside", "--category", "parks").code)
}

func TestCLI_CheckExplain(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.platform()
	r := c.run("", "check", "olga", "occurrences", "assign", "--location", "riverton", "--explain")
	assert.Equal(t, 5, r.code)
	assert.Contains(t, r.stdout, "denied (no_grant)")
	assert.Contains(t, r.stdout, "step 8 grants")
	assert.Contains(t, r.stdout, "grant operator at riverton (anchor riverton): role does not allow the action")

	var ex struct {
		Decision struct{ Allowed bool }
		Steps    []struct {
			Number  int
			Decided bool
		}
		Grants []struct {
			Role       string
			RoleAllows bool
		}
	}
	out := c.run("", "--json", "check", "olga", "occurrences", "update", "--municipality", "riverton", "--explain")
	require.Equal(t, 0, out.code, out.stderr)
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &ex))
	assert.True(t, ex.Decision.Allowed)
	require.NotEmpty(t, ex.Steps)
	assert.Equal(t, 8, ex.Steps[len(ex.Steps)-1].Number)
	require.Len(t, ex.Grants, 1)
	assert.True(t, ex.Grants[0].RoleAllows)

	assert.Equal(t, 2, c.run("", "check", "olga", "nope", "view", "--municipality", "riverton").code)
	assert.Equal(t, 4, c.run("", "check", "olga", "occurrences", "view", "--municipality", "nowhere").code)
	assert.Equal(t, 0, c.run("", "check", "-", "occurrences", "view", "--municipality", "riverton").code, "anonymous, public")
}

func TestCLI_WhoCanAndWhatCan(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.platform()
	var who []string
	c.json(&who, "who-can", "occurrences", "update", "riverton")
	assert.Equal(t, []string{"olga", "root"}, who)
	c.json(&who, "who-can", "occurrences", "assign", "riverton")
	assert.Equal(t, []string{"root"}, who)
	var what []struct{ Module, Action string }
	c.json(&what, "what-can", "olga", "riverton")
	assert.Contains(t, what, struct{ Module, Action string }{"occurrences", "update"})
	assert.NotContains(t, what, struct{ Module, Action string }{"occurrences", "assign"})
	assert.Contains(t, c.ok("what-can", "olga", "riverton"), "equipment    update")
	assert.Equal(t, 2, c.run("", "what-can", "olga", "north").code, "a region is not a municipality")
	assert.Equal(t, 4, c.run("", "who-can", "occurrences", "update", "nowhere").code)
}

func TestCLI_AuditVerifyAndQuery(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.platform()
	c.run("", "--as", "olga", "grant", "olga", "admin", "riverton") // refused, audited
	var events []struct {
		Type    string
		ActorID string
		Allowed *bool
	}
	c.json(&events, "audit", "query", "--type", "grant", "--actor", "olga")
	require.Len(t, events, 1)
	assert.False(t, *events[0].Allowed)
	assert.Contains(t, c.ok("audit", "query", "--limit", "3"), "SEQ")
	assert.Equal(t, 2, c.run("", "audit", "query", "--since", "yesterday").code)
	assert.Contains(t, c.ok("audit", "verify"), "yes")

	require.NoError(t, c.db.Exec("UPDATE townhall_audit_events SET actor_id = ? WHERE type = ?", "root", "grant").Error)
	r := c.run("", "audit", "verify")
	assert.Equal(t, 5, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no")
}

func TestCLI_RegistryValidate(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	good := filepath.Join(c.dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("modules:\n  claims:\n    actions:\n      submit: {roles: [staff], affiliated: true}\n"), 0o600))
	assert.Contains(t, c.ok("registry", "validate", good), "affiliated")
	bad := filepath.Join(c.dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("modules:\n  claims:\n    actions:\n      submit: {roles: [nobody]}\n"), 0o600))
	r := c.run("", "registry", "validate", bad)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "line 4")
	assert.Contains(t, r.stderr, "nobody")

	// --registry configures the platform.
	c.ok("--registry", good, "migrate")
	r = c.run("correct horse battery\n", "--registry", good, "superadmin", "create", "root")
	require.Equal(t, 0, r.code, r.stderr)
	c.ok("--registry", good, "--as", "root", "location", "create", "w", "municipality")
	c.ok("--registry", good, "check", "root", "claims", "submit", "--municipality", "w")
}

func TestCLI_PolicyTestNamesTheWrongExpectation(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	example, err := filepath.Abs("../../policytest/testdata/example.yaml")
	require.NoError(t, err)
	wrong, err := filepath.Abs("../../policytest/testdata/wrong.yaml")
	require.NoError(t, err)
	r := c.run("", "policy", "test", example, wrong)
	assert.Equal(t, 5, r.code, r.stderr)
	assert.Contains(t, r.stdout, "ok "+example)
	assert.Contains(t, r.stdout, "FAIL "+wrong+":line 11: checks[1]: olga occurrences.assign in W: want allow: true, got false")
	assert.Contains(t, r.stdout, "grant operator at W (anchor W): role does not allow the action")
	assert.Contains(t, r.stdout, "FAIL "+wrong+":line 13: who_can[0]")
	var results []struct {
		File     string
		Failures []any
	}
	r = c.run("", "--json", "policy", "test", wrong)
	assert.Equal(t, 5, r.code)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &results))
	require.Len(t, results, 1)
	assert.Len(t, results[0].Failures, 2)
	assert.Equal(t, 2, c.run("", "policy", "test", "missing.yaml").code)
}

func TestCLI_ExportImport(t *testing.T) {
	t.Parallel()
	src := newCLI(t)
	src.platform()
	src.ok("--as", "root", "grant", "olga", "manager", "riverton")
	doc := filepath.Join(src.dir, "export.json")
	src.ok("export", "--out", doc)
	data, err := os.ReadFile(doc)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "argon2")

	dst := newCLI(t)
	assert.Contains(t, dst.ok("import", doc), "imported 2 locations, 2 users")
	var before, after []string
	src.json(&before, "who-can", "occurrences", "assign", "riverton")
	dst.json(&after, "who-can", "occurrences", "assign", "riverton")
	assert.Equal(t, before, after)
	assert.Equal(t, []string{"olga", "root"}, after)

	r := dst.run("", "import", doc)
	assert.Equal(t, 2, r.code, "a second import into a database that is not empty")
	assert.Contains(t, r.stderr, "not empty")
	dst.ok("import", "--merge", doc)
	r = dst.run(string(data), "import", "-")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, 2, dst.run("{}", "import", "-").code, "version 0")
}

func TestCLI_UsageErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	assert.Equal(t, 2, c.run("", "--no-such-flag").code)
	assert.Equal(t, 2, c.run("", "grant").code)
	assert.Equal(t, 2, c.run("", "--db", "ftp://example.org/x", "migrate").code)
	assert.Contains(t, c.ok("--help"), "Exit codes")
}

// The README's quickstart block, run as written (bar installing the
// command and making the directory) with the built binary first on PATH,
// in an empty directory. On SQLite it uses the default townhall.db there.
func TestCLI_ReadmeQuickstart(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(readme), "<!-- quickstart")
	require.True(t, ok, "README has a quickstart block")
	block, _, ok = strings.Cut(block, "<!-- /quickstart -->")
	require.True(t, ok)
	_, block, _ = strings.Cut(block, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var script []string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "go install ") || strings.HasPrefix(line, "mkdir ") {
			continue
		}
		script = append(script, line)
	}
	c := newCLI(t)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n"))
	cmd.Dir = c.dir
	env := append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"), "TOWNHALL_AS=", "TOWNHALL_REGISTRY=")
	if dbtest.Name() == "sqlite" {
		env = append(env, "TOWNHALL_DB=")
	} else {
		env = append(env, "TOWNHALL_DB="+c.dsn)
	}
	cmd.Env = env
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "super admin root created")
	assert.Contains(t, string(out), "allowed (role) by operator at riverton")
	assert.Contains(t, string(out), "ok riverton.yaml: 3 passed, 0 failed")
	if dbtest.Name() == "sqlite" {
		assert.FileExists(t, filepath.Join(c.dir, "townhall.db"))
	}
}
