package access

import (
	_ "embed"

	"github.com/civicstack/townhall/internal/policy"
)

//go:embed model.conf
var casbinModel string

// CasbinModel returns the Casbin model (RBAC with domains) under which the
// casbin_rule rows townhall writes are read. With a domain matching
// function on g that reports whether the request's location lies in the
// grant's subtree (or the grant is at "*"), a Casbin enforcer over those
// rows answers the role-level part of Check: whether some grant's role
// allows the action there. It knows nothing of profiles, approval,
// categories, module settings or affiliations; townhall's tests use it as
// the reference for that part.
func CasbinModel() string { return casbinModel }

// CasbinSubject and CasbinRole give the names townhall writes in
// casbin_rule rows for a user and a role.
func CasbinSubject(userID string) string { return policy.UserKey(userID) }

// CasbinRole is the name of role in casbin_rule rows.
func CasbinRole(role string) string { return policy.RoleKey(canonicalRole(role)) }
