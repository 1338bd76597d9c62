// Package affiliation keeps organisations (external partners such as a
// health facility or a policy holder) and the links that affiliate users
// with them.
//
// # Organisations
//
// An Organisation has an ID (townhall's identifier rules: 1–64 characters
// of A-Z a-z 0-9 . _ : -, compared byte for byte; empty means "generate
// one"), a Name, a free-text Kind, the live location it belongs to, and its
// services: the modules active for it, kept sorted and without duplicates.
// Deleting an organisation keeps its row (deleted_at set), so its ID is
// never reused; every read treats it as unknown.
//
// # Links and validity windows
//
// A Link affiliates a user with an organisation during [ValidFrom,
// ValidTo); a nil bound is open. A link is live when it is not deleted and
// the store's clock (WithClock) lies inside its window: it becomes live at
// ValidFrom and stops being live at ValidTo. Windows are stored in UTC at
// microsecond precision. A window that lies in the past is accepted: it
// records history. One user may hold several links to one organisation
// (successive engagements), but their windows never overlap: Link refuses
// an overlapping window with ErrDuplicate, so a user has at most one live
// link per organisation at any instant. Links are never hard-deleted:
// Unlink soft-deletes the pair's live and upcoming links and keeps past
// ones as history.
//
// Members and OrganisationsOf answer with live links only; Links lists a
// user's whole non-deleted history. Methods that list things return an
// empty list, not an error, for an unknown or deleted owner. LoadLinks and
// LoadOrganisations are the plain scans the access checker's snapshot is
// loaded from; the checker evaluates windows with its own clock.
//
// # Deleting an organisation
//
// DeleteOrganisation is the cascade of the specification, in one
// transaction: the organisation and all its links are soft-deleted, and
// every user whose link to it was live and who is left with no live link,
// no active profile (townhall_profiles) and no platform grant (a casbin_rule
// grouping row at "*"), and who is not a super admin, is deactivated
// (is_active = false; profiles, grants and links are untouched, so
// reactivation restores them).
//
// # Guarantees
//
// Every write runs in one transaction together with its audit event
// (organisation_created, organisation_updated, link, unlink,
// organisation_deleted and user_active), attributed to the subject in the
// context or "system", so a failed write leaves no rows and no event. The
// Store's writes are unguarded: access.Admin is the guarded way, and runs
// the same writes inside its own transactions, auditing itself and
// updating the snapshot; no exported method writes without both. Concurrent
// writers are kept apart by row locks taken in one order (organisation,
// links, users), so overlapping windows cannot slip in concurrently. Every
// exported function validates its input and returns an error usable with
// errors.Is (ErrInvalidInput, ErrNotFound, ErrDuplicate; a missing user
// also matches users.ErrNotFound and a missing location
// location.ErrNotFound); nothing panics on bad input. The behaviour is the
// same on SQLite, PostgreSQL and MySQL/MariaDB.
package affiliation
