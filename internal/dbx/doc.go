// Package dbx holds townhall's database plumbing shared by every store:
// dialect detection, transactions, the migration lock, portable error
// classification, SQLite configuration and identifier rules.
package dbx
