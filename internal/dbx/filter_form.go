package dbx

import "context"

// FilterForm names a PostgreSQL form of a location filter's subtree
// condition (see location.Filter.Condition), for tests that run every form
// on the same data.
type FilterForm string

// The PostgreSQL forms of a subtree condition.
const (
	FormJoin       FilterForm = "join"        // col IN (subquery)
	FormArray      FilterForm = "array"       // the hashed guard AND col = ANY(ARRAY(subquery))
	FormHashed     FilterForm = "hashed"      // (col IN (subquery)) IS TRUE
	FormIndexArray FilterForm = "index-array" // col = ANY(ARRAY(subquery))
	FormLeaf       FilterForm = "leaf"        // col = (one leaf root's own row) OR ...; the join for other filters
)

type filterFormKey struct{}

// WithFilterForm returns ctx making location filters built into queries
// run with it take form on PostgreSQL, whatever the subtree sizes and the
// host's index. The forms select the same rows; only the plan differs.
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
