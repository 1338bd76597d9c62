// Package townhall is access management for municipal and public-service
// platforms, embedded in a host service that owns the HTTP layer and hands
// townhall a *gorm.DB.
//
// It answers three questions and keeps the records that prove the answers:
//
//  1. May this subject use this module action here? (access.Checker.Check,
//     access.Checker.UserCanAccessModule)
//  2. Which records may this subject see? (access.Checker.LocationFilter,
//     access.Checker.Filter: GORM scopes that agree with Check)
//  3. Who may change who may do what? (access.Admin: grants without
//     escalation, approval, deactivation, deletion, impersonation)
//
// Open migrates the database (idempotent, safe when several processes open
// it at once), loads the in-memory snapshot that decisions are made from,
// and wires the stores:
//
//	db, err := townhall.OpenSQLite("townhall.db")
//	p, err := townhall.Open(ctx, db)
//	defer p.Close()
//	ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "u1"}, "occurrences", "view")
//
// The packages: users (users, credentials, profiles, departments), location
// (the location tree and its filter), affiliation (organisations and user
// links), audit (the hash-chained audit log) and access (registry, checker,
// admin, HTTP middleware).
package townhall
