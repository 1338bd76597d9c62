package dbx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

// ScanRaw reads text columns named through RawColumns with the same bytes
// on every database (read as BLOBs on SQLite): NULL as nil, the empty
// string as no bytes, other text byte for byte, integers in text form.
func TestScanRaw_RawColumnsKeepTheirValues(t *testing.T) {
	db := dbtest.New(t)
	require.NoError(t, db.Exec(`CREATE TABLE scan_raw (k INTEGER, a VARCHAR(64), b VARCHAR(64), n INTEGER)`).Error)
	require.NoError(t, db.Exec(`INSERT INTO scan_raw VALUES (1, 'Zoë ünï', NULL, 7), (2, '', 'x', 0)`).Error)
	var got [][]string
	var nulls []bool
	q := `SELECT ` + dbx.RawColumns(db, "a", "b") + `, n FROM scan_raw ORDER BY k`
	err := dbx.ScanRaw(context.Background(), db, q, nil, func(c [][]byte) error {
		got = append(got, []string{string(c[0]), string(c[1]), string(c[2])})
		nulls = append(nulls, c[1] == nil)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"Zoë ünï", "", "7"}, {"", "x", "0"}}, got)
	assert.Equal(t, []bool{true, false}, nulls)
}
