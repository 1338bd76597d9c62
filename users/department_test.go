package users_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func TestCreateDepartment_BelongsToAMunicipality(t *testing.T) {
	e := newEnv(t)
	d, err := e.profiles.CreateDepartment(ctx, users.Department{
		MunicipalityID: "m1", Name: "Waste", Categories: []string{"bins", "bins", "awk"},
	})
	require.NoError(t, err)
	assert.NotEmpty(t, d.ID)
	assert.Equal(t, []string{"awk", "bins"}, d.Categories)
	ev := e.lastEvent(t, audit.TypeDepartmentCreated)
	assert.Equal(t, "m1", ev.LocationID)
	assert.Equal(t, d.ID, ev.Details["department_id"])

	got, err := e.profiles.GetDepartment(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, d, got)

	for _, nd := range []users.Department{
		{ID: "roads", MunicipalityID: "m1", Name: "Roads"},
		{ID: "Roads", MunicipalityID: "m1", Name: "Parks"},
		{ID: "other", MunicipalityID: "m2", Name: "Abattoir"},
	} {
		_, err := e.profiles.CreateDepartment(ctx, nd)
		require.NoError(t, err)
	}
	list, err := e.profiles.Departments(ctx, "m1")
	require.NoError(t, err)
	var names []string
	for _, d := range list {
		assert.Equal(t, "m1", d.MunicipalityID)
		names = append(names, d.Name)
	}
	assert.Equal(t, []string{"Parks", "Roads", "Waste"}, names, "by name")

	events := len(e.events(t, audit.TypeDepartmentCreated))
	for name, tt := range map[string]struct {
		d    users.Department
		want error
	}{
		"taken id":             {users.Department{ID: "roads", MunicipalityID: "m2", Name: "X"}, users.ErrDuplicate},
		"district":             {users.Department{MunicipalityID: "d1", Name: "X"}, location.ErrInvalidLevel},
		"village":              {users.Department{MunicipalityID: "v1", Name: "X"}, users.ErrInvalidInput},
		"unknown municipality": {users.Department{MunicipalityID: "nowhere", Name: "X"}, location.ErrNotFound},
		"no municipality":      {users.Department{Name: "X"}, users.ErrInvalidInput},
		"no name":              {users.Department{MunicipalityID: "m1"}, users.ErrInvalidInput},
		"blank name":           {users.Department{MunicipalityID: "m1", Name: " \t "}, users.ErrInvalidInput},
		"long name":            {users.Department{MunicipalityID: "m1", Name: strings.Repeat("n", 151)}, users.ErrInvalidInput},
		"bad id":               {users.Department{ID: "a b", MunicipalityID: "m1", Name: "X"}, users.ErrInvalidInput},
		"bad category":         {users.Department{MunicipalityID: "m1", Name: "X", Categories: []string{"ok", "not ok"}}, users.ErrInvalidInput},
	} {
		_, err := e.profiles.CreateDepartment(ctx, tt.d)
		assert.ErrorIs(t, err, tt.want, name)
	}
	assert.Len(t, e.events(t, audit.TypeDepartmentCreated), events, "refused departments are not audited")

	_, err = e.profiles.GetDepartment(ctx, "ROADS")
	assert.ErrorIs(t, err, users.ErrNotFound, "IDs are case-sensitive")
	_, err = e.profiles.GetDepartment(ctx, "")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
	list, err = e.profiles.Departments(ctx, "nowhere")
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = e.profiles.Departments(ctx, "*")
	assert.ErrorIs(t, err, users.ErrInvalidInput)
}

func TestEffectiveCategories(t *testing.T) {
	tests := []struct {
		name     string
		profile  []string
		dept     *users.Department
		wantCats []string
		wantAll  bool
	}{
		{"neither set, no department", nil, nil, nil, true},
		{"neither set", nil, &users.Department{}, nil, true},
		{"empty lists count as unset", []string{}, &users.Department{Categories: []string{}}, nil, true},
		{"only the profile's", []string{"b", "a", "b"}, nil, []string{"a", "b"}, false},
		{"only the profile's, department without categories", []string{"a"}, &users.Department{}, []string{"a"}, false},
		{"only the department's", nil, &users.Department{Categories: []string{"y", "x"}}, []string{"x", "y"}, false},
		{"both: intersection", []string{"a", "b", "c"}, &users.Department{Categories: []string{"c", "b", "d"}}, []string{"b", "c"}, false},
		{"both: empty intersection means none", []string{"a"}, &users.Department{Categories: []string{"b"}}, nil, false},
		{"both equal", []string{"a"}, &users.Department{Categories: []string{"a"}}, []string{"a"}, false},
		{"case-sensitive", []string{"A"}, &users.Department{Categories: []string{"a"}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cats, all := users.EffectiveCategories(users.Profile{AllowedCategories: tt.profile}, tt.dept)
			assert.Equal(t, tt.wantAll, all)
			assert.Equal(t, tt.wantCats, cats)
			if !tt.wantAll {
				assert.False(t, all)
			}
		})
	}
}
