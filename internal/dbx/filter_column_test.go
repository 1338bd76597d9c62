package dbx

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"gorm.io/gorm/clause"
)

func TestParseColumn(t *testing.T) {
	good := map[string]clause.Column{
		"location_id":                    {Name: "location_id"},
		"_x9":                            {Name: "_x9"},
		"o.location_id":                  {Table: "o", Name: "location_id"},
		"Records.Cat":                    {Table: "Records", Name: "Cat"},
		strings.Repeat("c", MaxIdentLen): {Name: strings.Repeat("c", MaxIdentLen)},
	}
	for ref, want := range good {
		col, ok := ParseColumn(ref)
		assert.True(t, ok, ref)
		assert.Equal(t, want, col, ref)
	}
	for _, ref := range []string{
		"", ".", "a.", ".a", "a.b.c", "1a", "a-b", "a b", "a;b", "a'", `a"`, "a`", "a)", "lócation",
		strings.Repeat("c", MaxIdentLen+1), "t." + strings.Repeat("c", MaxIdentLen+1),
	} {
		_, ok := ParseColumn(ref)
		assert.False(t, ok, "%q", ref)
	}
}
