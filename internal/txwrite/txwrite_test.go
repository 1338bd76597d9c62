package txwrite

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/internal/txwrite/hook"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// TestHooks_AllWired calls every function with a nil transaction: each
// must reach its store method (which refuses the nil transaction with the
// store's ErrInvalidInput), so every hook is set, and to the right type.
func TestHooks_AllWired(t *testing.T) {
	ctx := context.Background()
	u, p := &users.Store{}, &users.ProfileStore{}
	l, a := &location.Store{}, &affiliation.Store{}
	link := affiliation.Link{UserID: "u1", OrganisationID: "o1"}
	calls := map[string]struct {
		err  error
		want error
	}{
		"CreateUser":            {second(CreateUser(ctx, nil, u, users.NewUser{Username: "x"})), users.ErrInvalidInput},
		"CreateProfile":         {second(CreateProfile(ctx, nil, p, users.Profile{})), users.ErrInvalidInput},
		"CreateDepartment":      {second(CreateDepartment(ctx, nil, p, users.Department{})), users.ErrInvalidInput},
		"SetProfileApproved":    {SetProfileApproved(ctx, nil, p, "u1", "m1", true), users.ErrInvalidInput},
		"SetProfileActive":      {SetProfileActive(ctx, nil, p, "u1", "m1", true), users.ErrInvalidInput},
		"DeleteProfilesOf":      {DeleteProfilesOf(ctx, nil, p, "u1"), users.ErrInvalidInput},
		"DeleteProfilesAt":      {DeleteProfilesAt(ctx, nil, p, []string{"m1"}), users.ErrInvalidInput},
		"CreateLocation":        {second(CreateLocation(ctx, nil, l, location.Location{ID: "R", Level: "region"})), location.ErrInvalidInput},
		"MoveLocation":          {MoveLocation(ctx, nil, l, "R", ""), location.ErrInvalidInput},
		"DeleteLocation":        {second(DeleteLocation(ctx, nil, l, "R")), location.ErrInvalidInput},
		"CreateOrganisation":    {second(CreateOrganisation(ctx, nil, a, affiliation.Organisation{ID: "o1", Name: "n", Kind: "k", LocationID: "m1"})), affiliation.ErrInvalidInput},
		"DeleteOrganisation":    {second(DeleteOrganisation(ctx, nil, a, "o1")), affiliation.ErrInvalidInput},
		"DeleteOrganisationsAt": {second(DeleteOrganisationsAt(ctx, nil, a, []string{"m1"})), affiliation.ErrInvalidInput},
		"Link":                  {Link(ctx, nil, a, link), affiliation.ErrInvalidInput},
		"Unlink":                {Unlink(ctx, nil, a, "u1", "o1"), affiliation.ErrInvalidInput},
		"UnlinkAll":             {UnlinkAll(ctx, nil, a, "u1"), affiliation.ErrInvalidInput},
	}
	for name, c := range calls {
		assert.NotErrorIs(t, c.err, errUnwired, name)
		assert.ErrorIs(t, c.err, c.want, name)
	}
}

// TestFn_RefusesAHookOfAnotherType: a hook left unset or set to another
// function type is an error, not a panic.
func TestFn_RefusesAHookOfAnotherType(t *testing.T) {
	_, err := fn[func() error]("nil", nil)
	assert.ErrorIs(t, err, errUnwired)
	_, err = fn[func() error]("other", hook.LocationMove)
	assert.ErrorIs(t, err, errUnwired)
	f, err := fn[func(*location.Store, context.Context, *gorm.DB, string, string) error]("LocationMove", hook.LocationMove)
	require.NoError(t, err)
	assert.NotNil(t, f)
}

// readers are the exported methods of the stores, and the exported
// functions of their packages, that take a *gorm.DB without writing
// through it (or, for Migrate and the constructors, only create the
// schema or keep the handle).
var readers = []string{
	"GetTx", "CountActiveSuperAdmins", // methods
	"Migrate", "NewStore", "NewProfileStore", "LoadLinks", "LoadOrganisations", "LoadTree", "TreeVersion", // functions
}

// TestStores_NoExportedWriteInTheCallersTransaction: no method of the
// stores and no function of their packages takes a transaction (a
// *gorm.DB) to write in it, and no method is named ...Tx but GetTx: such a
// write would bypass the store's audit event and the snapshot update
// (SPEC §3). They live behind this package.
func TestStores_NoExportedWriteInTheCallersTransaction(t *testing.T) {
	gormDB := reflect.TypeOf((*gorm.DB)(nil))
	for _, store := range []any{&users.Store{}, &users.ProfileStore{}, &location.Store{}, &affiliation.Store{}} {
		typ := reflect.TypeOf(store)
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			takesDB := false
			for in := range m.Type.NumIn() {
				takesDB = takesDB || m.Type.In(in) == gormDB
			}
			if (takesDB || strings.HasSuffix(m.Name, "Tx")) && !slices.Contains(readers, m.Name) {
				t.Errorf("%s exports %s", typ, m.Name)
			}
		}
	}
	for _, dir := range []string{"users", "location", "affiliation"} {
		for _, name := range exportedFuncsTakingDB(t, filepath.Join("..", "..", dir)) {
			if !slices.Contains(readers, name) {
				t.Errorf("package %s exports %s, which takes a *gorm.DB", dir, name)
			}
		}
	}
}

// exportedFuncsTakingDB parses the non-test files of the package in dir
// and returns its exported functions (not methods) with a *gorm.DB
// parameter.
func exportedFuncsTakingDB(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	var out []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() {
				continue
			}
			for _, p := range fd.Type.Params.List {
				if star, ok := p.Type.(*ast.StarExpr); ok {
					if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "DB" {
						out = append(out, fd.Name.Name)
						break
					}
				}
			}
		}
	}
	require.NotEmpty(t, out, "the parse found the package's Migrate at least")
	return out
}

func second[T any](_ T, err error) error { return err }
