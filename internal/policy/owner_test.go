package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyPolicyTouchesTheTable keeps this package the only non-test code
// that reads or writes casbin_rule: outside it, no non-test Go file of the
// module may import gorm-adapter, refer to policy.Table, or hold a string
// literal naming the table or its ptype column. (Comments may name the
// table; tests may read it to check what was written.)
func TestOnlyPolicyTouchesTheTable(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", root, err)
	}
	own, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	var files int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (path == own || path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor")):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go"):
			return nil
		}
		files++
		rel, _ := filepath.Rel(root, path)
		for _, v := range tableUses(t, path) {
			t.Errorf("%s: %s: casbin_rule is internal/policy's (add what you need there)", rel, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked only %d Go files under %s: the walk is broken", files, root)
	}
}

// tableUses returns what in the Go file at path touches casbin_rule.
func tableUses(t *testing.T, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var out []string
	policyName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		switch {
		case strings.HasPrefix(p, "github.com/casbin/gorm-adapter"):
			out = append(out, fset.Position(imp.Pos()).String()+" imports "+p)
		case p == "github.com/civicstack/townhall/internal/policy":
			policyName = "policy"
			if imp.Name != nil {
				policyName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind == token.STRING && mentionsTable(n.Value) {
				out = append(out, fset.Position(n.Pos()).String()+" literal "+n.Value)
			}
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && policyName != "" && x.Name == policyName && n.Sel.Name == "Table" {
				out = append(out, fset.Position(n.Pos()).String()+" uses policy.Table")
			}
		}
		return true
	})
	return out
}

func mentionsTable(lit string) bool {
	s := strings.ToLower(lit)
	return strings.Contains(s, Table) || strings.Contains(s, "ptype") || strings.Contains(s, "casbinrule")
}

// TestGuardSeesAViolation checks the guard on a file that breaks each rule.
func TestGuardSeesAViolation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.go")
	src := `package bad

import (
	gormadapter "github.com/casbin/gorm-adapter/v3"
	pol "github.com/civicstack/townhall/internal/policy"
)

var _ = gormadapter.CasbinRule{}
var _ = pol.Table
var _ = "SELECT v0 FROM casbin_rule WHERE ptype = 'g'"
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := tableUses(t, path); len(got) != 3 {
		t.Fatalf("want 3 findings (import, policy.Table, literal), got %d: %q", len(got), got)
	}
}
