package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
)

func TestRun_ListsWhatEachUserMayUpdate(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), &out))
	for _, line := range []string{
		"ada (super admin) may update 8: ",
		"mark (manager of the Lakes district, occurrences off in Hillside) may update 5: pothole on Main Street, broken street light, flooded lane, fallen tree, bridge damage\n",
		"olga (operator in Riverton, roads only) may update 2: pothole on Main Street, flooded lane\n",
		"otto (operator at Mill Village) may update 2: flooded lane, fallen tree\n",
		"una (operator in Riverton, not approved yet) may update 0: \n",
	} {
		assert.Contains(t, out.String(), line)
	}
}

// The filter returns exactly the occurrences Check allows one by one.
func TestFilter_AgreesWithCheck(t *testing.T) {
	ctx := context.Background()
	p, err := setup(ctx, filepath.Join(t.TempDir(), "townhall.db"))
	require.NoError(t, err)
	defer p.Close()
	var all []Occurrence
	require.NoError(t, p.DB().Order("id").Find(&all).Error)
	for _, u := range people {
		titles, _, err := updatable(ctx, p, p.DB(), u.id)
		require.NoError(t, err)
		allowed := []string{}
		for _, o := range all {
			res := &access.Resource{}
			if o.LocationID != nil {
				res.LocationID = *o.LocationID
			}
			if o.Category != nil {
				res.Category = *o.Category
			}
			d, err := p.Checker.Check(ctx, access.Subject{UserID: u.id}, access.Request{Module: "occurrences", Action: "update", Resource: res})
			require.NoError(t, err)
			if d.Allowed {
				allowed = append(allowed, o.Title)
			}
		}
		assert.Equal(t, allowed, titles, u.id)
	}
}
