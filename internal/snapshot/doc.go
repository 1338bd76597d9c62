// Package snapshot holds everything an access decision reads, in memory,
// and the one way it changes.
//
// A Snapshot is immutable once published: the access package loads it with
// one atomic read per check and never waits for a writer. LoadSnapshot
// reads one from the database; ApplyParts turns the parts a change names
// into the next snapshot, copying only what the change touches (one shard
// of users, the tree, a settings map). Every writer goes through
// ApplyParts: Admin before it commits (reading through the change's own
// transaction, so that it judges the result), the stores' hooks after a
// local commit, and Apply and Sync for changes other processes committed,
// with Parts.AddEvent as the only mapping from a change event to the parts
// it touches. A kind of change is therefore applied the same way on every
// replica.
//
// The package also holds the compiled form of a registry (Compiled), the
// user table with its dense indexes (UserTable), and the rows of the access
// package's own tables that the loader reads. It has no policy of its own:
// what a snapshot allows is decided in the access package.
package snapshot
