// Package location keeps townhall's location tree: the backbone of tenancy
// (the municipality level), of grants (a grant at a location covers its
// subtree) and of record filters.
//
// # Model
//
// Locations form one tree. Levels are ordered names, top first (default
// DefaultLevels, configurable with WithLevels; Municipality must be one of
// them). A child's level is strictly below its parent's; levels may be
// skipped, and a top-level location may be of any level. IDs follow
// townhall's identifier rules (1–64 characters of A-Z a-z 0-9 . _ : -,
// compared byte for byte on every database) and are never reused: a
// deleted location keeps its row, is ErrNotFound for every read and cannot
// be a parent.
//
// # Representation: a closure table
//
// Besides townhall_locations (id, name, level, parent_id, depth, times),
// the tree is stored as a closure table, townhall_location_paths
// (ancestor_id, descendant_id, depth), with one row for every live location
// and each of its ancestors-or-self. Its primary key (ancestor_id,
// descendant_id) and an index on descendant_id answer, on SQLite,
// PostgreSQL and MySQL/MariaDB alike, with indexed equality lookups and no
// recursion or LIKE:
//
//	is X in Y's subtree:      ... WHERE ancestor_id = Y AND descendant_id = X
//	rows in these subtrees:   col IN (SELECT descendant_id FROM townhall_location_paths
//	                                  WHERE ancestor_id IN (?, ...))
//	ancestors of X:           ... WHERE descendant_id = X ORDER BY depth
//
// The SQL of a filter grows with the number of subtree roots, never with
// the size of the subtrees. Deleted locations have no rows, so those
// queries never see them.
//
// Costs, with d the depth of a location (bounded by the number of levels)
// and n the size of a subtree:
//
//   - read: subtree membership is one primary-key lookup; descendants are
//     one index range scan of n rows; ancestors d rows.
//   - insert: d+1 path rows (one INSERT ... SELECT of the parent's paths).
//   - move: deletes n × (old d) and inserts n × (new d) path rows, plus a
//     depth update of n rows; all set-based, a constant number of
//     statements.
//   - delete: n location rows marked, n × d path rows removed.
//   - space: one row per (location, ancestor-or-self), about 4 rows per
//     location with the default levels.
//
// Nested integer intervals were the alternative: range lookups and a
// smaller index, but a move or an insert into a full gap renumbers large
// parts of the tree, and interval filters need a join to read the bounds.
// The closure table keeps every write local to the subtree concerned.
//
// # Writes
//
// Create, Move and Delete each run in one transaction together with their
// audit event (location_created, location_moved, location_deleted), so a
// refused or failed write leaves nothing behind. Every tree write first
// locks one row (townhall_location_tree), which serialises tree writes
// across connections and processes: two concurrent moves cannot corrupt
// the closure table, and a create cannot land under a concurrently deleted
// parent. The same row counts the writes (TreeVersion). access.Admin runs
// the same writes inside its own guarded transactions, with its own audit
// events and snapshot update; no exported method writes without both.
//
// # In-memory tree
//
// Tree is the checker's copy of the live tree. It interns locations as
// int32 indexes and keeps each location's ancestors by depth, so IsWithin
// is constant time (two map lookups and a comparison), and it is updated
// incrementally by Add, Move and Remove, or by Apply, instead of being
// reloaded. WithOnChange delivers each committed Change in commit order,
// stamped with the tree version it produced (TreeVersion), so a consumer
// can tell whether changes from elsewhere are missing. Freeze makes a Tree
// immutable with lock-free reads; the checker publishes frozen trees and
// changes them copy-on-write (Clone, apply, Freeze).
//
// # Filter
//
// Filter is a set of live subtrees minus carved-out subtrees (or
// everything, or nothing) that becomes a GORM scope with Scope(column): a
// condition on the closure table whose length grows with the number of
// subtree roots and carve-outs, never with the size of the subtrees, with
// every value a parameter and the column name validated.
// access.Checker.LocationFilter builds one per request; Contains answers
// for the tree it was built on. Each Tree node keeps the size of its
// subtree, so a filter knows its size in O(roots); on PostgreSQL the size,
// and for mid-sized subtrees whether the host column is indexed, picks the
// form of the condition (an array that drives the column's index, or a
// hashed test in one sequential pass: see Filter.Condition). Index the
// host table's location column: narrow filters then read only the records
// they select.
package location
