package dbx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// ScanRaw runs query and calls fn with each row's column values as raw
// bytes, valid only during the call (NULL is nil). It is the loader's fast
// path for millions of rows: on PostgreSQL it reads pgx's wire buffers
// directly (database/sql would allocate a string per value); elsewhere it
// scans into sql.RawBytes. Values are in text form.
//
// Inside a transaction (db from Tx), it reads through the transaction, so
// that it sees the transaction's own writes.
func ScanRaw(ctx context.Context, db *gorm.DB, query string, args []any, fn func(cols [][]byte) error) error {
	if inTx(db) {
		rows, err := db.Statement.ConnPool.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		return scanRows(rows, fn)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if DialectOf(db) == Postgres {
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		errNotPgx := errors.New("not a pgx connection")
		err = conn.Raw(func(dc any) error {
			sc, ok := dc.(*stdlib.Conn)
			if !ok {
				return errNotPgx
			}
			// The simple protocol returns every value in text form.
			rows, err := sc.Conn().Query(ctx, query, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := fn(rows.RawValues()); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		if !errors.Is(err, errNotPgx) {
			return err
		}
	}
	rows, err := sqlDB.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return scanRows(rows, fn)
}

// scanRows calls fn with each row of rows as raw bytes and closes rows.
func scanRows(rows *sql.Rows, fn func(cols [][]byte) error) error {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	raw := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	vals := make([][]byte, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		for i := range raw {
			vals[i] = raw[i]
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ParseBool reads a boolean in the text forms the supported databases
// return: t/f (PostgreSQL), 1/0 (MySQL, SQLite), true/false.
func ParseBool(b []byte) bool {
	return len(b) > 0 && (b[0] == 't' || b[0] == 'T' || b[0] == '1' || b[0] == 1)
}

// RawColumns returns cols, comma-separated, for a ScanRaw query on db. On
// SQLite each text column is read as a BLOB: the driver then copies its
// bytes once, where for text it makes a string and looks up the column's
// declared type on every row (a third of the time of loading a million
// grants). Integer columns are left as they are.
func RawColumns(db *gorm.DB, cols ...string) string {
	if DialectOf(db) != SQLite {
		return strings.Join(cols, ", ")
	}
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "CAST(" + c + " AS BLOB)"
	}
	return strings.Join(out, ", ")
}
