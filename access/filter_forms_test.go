package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

// The differential test (TestFilter_AgreesWithCheck) with each form of the
// subtree conditions on PostgreSQL, SQLite, and MySQL and MariaDB, forced on the
// same worlds (dbx.WithFilterForm): whichever form the subtree sizes and
// the host's index pick, the rows a scoped query returns are the rows
// Check allows.
func TestFilter_AgreesWithCheckInEveryForm(t *testing.T) {
	var forms []dbx.FilterForm
	switch dbtest.Name() {
	case "postgres":
		forms = []dbx.FilterForm{dbx.FormJoin, dbx.FormArray, dbx.FormHashed, dbx.FormIndexArray, dbx.FormLeaf}
	case "mysql":
		forms = []dbx.FilterForm{dbx.FormMyExact, dbx.FormMyKey, dbx.FormMyBinary}
	default:
		forms = []dbx.FilterForm{dbx.FormJoin, dbx.FormLeaf}
	}
	// One seed: TestFilter_AgreesWithCheck runs them all in the forms
	// their sizes pick.
	for _, seed := range diffSeeds[:1] {
		for _, form := range forms {
			t.Run(string(form), func(t *testing.T) {
				w := newGenWorld(t, seed)
				w.db = w.db.WithContext(dbx.WithFilterForm(context.Background(), form))
				kinds := w.verify(t)
				assert.Positive(t, kinds["subtrees"])
				// The forced form is the one the SQL holds (location's
				// TestFilter_EveryFormAgreesWithContains tells the join from
				// the index array).
				array, hashed := kinds["postgres array form"], kinds["postgres hashed form"]
				binary, collated, key := kinds["mysql binary tests"], kinds["mysql collated tests"], kinds["mysql key reads"]
				switch form {
				case dbx.FormArray:
					assert.True(t, array > 0 && hashed == 0, "array %d, hashed %d", array, hashed)
				case dbx.FormHashed:
					assert.True(t, hashed > 0 && array == 0, "array %d, hashed %d", array, hashed)
				case dbx.FormMyBinary:
					assert.True(t, binary > 0 && collated == 0 && key == 0, "binary %d, collated %d, key %d", binary, collated, key)
				case dbx.FormMyKey:
					assert.True(t, collated > 0 && binary == collated && key == 2*collated, "binary %d, collated %d, key %d", binary, collated, key)
				case dbx.FormMyExact:
					assert.True(t, collated > 0 && binary == collated && key == 0, "binary %d, collated %d, key %d", binary, collated, key)
				default:
					assert.Zero(t, array+hashed)
				}
			})
		}
	}
}
