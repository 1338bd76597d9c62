package dbx

import "context"

// FilterForm names a form of a location filter's subtree condition on
// PostgreSQL or on MySQL and MariaDB (see location.Filter.Condition), for
// tests that run every form on the same data. A form of the other
// database's family is ignored.
type FilterForm string

// The PostgreSQL forms of a subtree condition.
const (
	FormJoin       FilterForm = "join"        // col IN (subquery)
	FormArray      FilterForm = "array"       // the hashed guard AND col = ANY(ARRAY(subquery))
	FormHashed     FilterForm = "hashed"      // (col IN (subquery)) IS TRUE
	FormIndexArray FilterForm = "index-array" // col = ANY(ARRAY(subquery))
	FormLeaf       FilterForm = "leaf"        // col = (one leaf root's own row) OR ...; the join for other filters
)

// The MySQL and MariaDB forms of a subtree condition.
const (
	FormMyExact  FilterForm = "my-exact"  // CAST(col AS BINARY) IN (subquery) AND col IN (subquery)
	FormMyKey    FilterForm = "my-key"    // my-exact, the closure rows read through their primary key
	FormMyBinary FilterForm = "my-binary" // CAST(col AS BINARY) IN (subquery)
)

type filterFormKey struct{}

// WithFilterForm returns ctx making location filters built into queries
// run with it take form on the databases it belongs to, whatever the
// subtree sizes and the host's index. The forms select the same rows; only
// the plan differs.
func WithFilterForm(ctx context.Context, form FilterForm) context.Context {
	return context.WithValue(ctx, filterFormKey{}, form)
}

// FilterFormOf returns the form WithFilterForm set on ctx, if any.
func FilterFormOf(ctx context.Context) (FilterForm, bool) {
	if ctx == nil {
		return "", false
	}
	f, ok := ctx.Value(filterFormKey{}).(FilterForm)
	return f, ok
}
