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
// the grant that allowed it. Decisions come from an in-memory snapshot that
// is immutable once published: a check reads it with one atomic load, takes
// no lock and never touches the database. Every write made through townhall
// (Admin, or the stores of a Platform) builds the next snapshot
// copy-on-write from the rows of the entities it changed — never a full
// reload — and publishes it before the call returns, so a check sees a
// change whole or not at all. Denied decisions are recorded in the audit log
// through allocation-free queues, one per processor.
//
// Checker.Filter and Checker.LocationFilter turn the same rules into GORM
// scopes for listing records; for every record the scoped query returns it
// exactly when Check with that record as Resource allows.
//
// # Replicas
//
// Every write commits its audit events in the same transaction, numbered in
// commit order; the audit log is therefore the change log. Checker.Revision
// is the sequence number up to which the snapshot reflects every change;
// Checker.Sync applies what other processes committed since (read-your-
// writes across replicas on demand). A background loop syncs every 250 ms;
// on PostgreSQL, LISTEN/NOTIFY on a dedicated connection wakes it within
// milliseconds and reconnects after a dropped connection. Behind a
// transaction-mode pooler, which cannot carry LISTEN, use polling
// (townhall.WithPolling).
//
// # Lookups and explanations
//
// Checker.Subjects lists the users Check allows an action on a record at a
// location (an assignment drop-down); Checker.Permissions lists the module
// actions Check allows a subject in a municipality (a menu). Both decide
// each answer with Check's own code on one snapshot, so they agree with it
// by construction. Checker.Explain returns a decision with the steps of
// SPEC §2 it went through and, per grant, the decision that grant alone
// would give.
//
// # Export and import
//
// Admin.Export reads the access data (no secrets) into a versioned
// Document; Admin.Import writes one in a single transaction, into an empty
// database or merging. The townhall command (cmd/townhall) wraps both.
//
// # Impersonation
//
// Admin.Impersonate lets an active super admin act as another user, with
// every restriction of that user, for a bounded time and with a reason. The
// token is 256 random bits, stored only as a hash; ResolveImpersonation
// turns it into Subject{UserID: target, ImpersonatorID: admin}, and every
// check and audit event of that subject carries both IDs. The session ends
// on StopImpersonation, expiry, the admin losing the flag or being
// deactivated, or the target being deleted.
//
// # Changes
//
// Admin makes guarded changes (SPEC §3): System() is the bootstrap actor;
// only super admins make super admins and grant reserved or platform roles;
// a platform_admin grants any other role anywhere; anyone else needs
// users:manage covering the location and may grant only roles whose
// permissions there are a subset of their own ("a user can only add his own
// role"). Over these rules, every change is judged on its result: it is
// refused as a whole when it lets any user gain a permission the actor
// could not grant (see Admin). Every change and every refusal is audited in
// the same transaction as the change. A refusal matches ErrForbidden.
//
// # HTTP
//
// Authenticator is the authentication middleware: a bearer session token
// or API key, else the session cookie (Secure, HttpOnly, SameSite=Lax,
// guarded on unsafe methods by http.CrossOriginProtection), then an
// impersonation token, become the subject in the request context; bad
// credentials are a 401, never anonymous. Checker.Require is the access
// middleware: on a record (WithResource), in a municipality (a path value
// or a function), or as the module gate (CheckModule, the gate with its
// reason). Every decision takes Check's path and denials are audited.
// Both answer refusals with RFC 9457 problem bodies; ProblemFor and
// WriteProblem let host handlers answer the same way.
package access
