// Package access decides and changes who may do what.
//
// # Model
//
// A Registry declares modules, their actions and the roles allowed to
// perform each (DefaultRegistry is SPEC §1's table; LoadRegistry reads YAML
// or JSON). Roles are granted to users at a location (a grant covers the
// location's whole subtree) or, for platform roles, platform-wide at "*".
// A grant counts only through the user's anchor profile: the profile at the
// nearest ancestor-or-self of the grant's location, which must be active
// and approved.
//
// Grants and role permissions are Casbin RBAC-with-domains rows in
// gorm-adapter's casbin_rule table:
//
//	g, user:<id>, role:<name>, <locationID|*>
//	p, role:<name>, *, <module>, <action>
//
// Users and roles live in separate namespaces. The p rows are compiled from
// the registry (implicit admin and viewer rules and inheritance expanded)
// and rewritten by Open when they differ, with a registry_changed audit
// event. CasbinModel returns the model under which a Casbin enforcer over
// these rows gives the role-level answers; townhall's own checks read the
// rows into a snapshot instead.
//
// # Decisions
//
// Checker.Check follows SPEC §2 step by step (see its documentation) and
// returns a Decision with a Reason and, when allowed, the Role and Domain of
// the grant that allowed it. Decisions come from an in-memory snapshot;
// every write made through townhall (Admin, or the stores of a Platform)
// updates it before the call returns, entity by entity, never by a full
// reload. Denied decisions are recorded in the audit log asynchronously.
//
// # Changes
//
// Admin makes guarded changes (SPEC §3): System() is the bootstrap actor;
// only super admins make super admins and grant reserved or platform roles;
// a platform_admin grants any other role anywhere; anyone else needs
// users:manage covering the location and may grant only roles whose
// permissions there are a subset of their own ("a user can only add his own
// role"). Every change and every refusal is audited in the same transaction
// as the change. A refusal matches ErrForbidden.
//
// # HTTP
//
// Checker.Require is net/http middleware (see its documentation).
package access
