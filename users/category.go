package users

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/civicstack/townhall/internal/dbx"
)

// normalizeCategories validates a category list and returns it sorted and
// without duplicates; nil when empty. Categories follow the ID rules (1-64
// characters of A-Z a-z 0-9 . _ : -, case-sensitive).
func normalizeCategories(cats []string) ([]string, error) {
	if len(cats) == 0 {
		return nil, nil
	}
	for _, c := range cats {
		if !dbx.ValidID(c) {
			return nil, fmt.Errorf("%w: category %q: want 1-64 characters of A-Z a-z 0-9 . _ : -", ErrInvalidInput, c)
		}
	}
	return sortedSet(cats), nil
}

// sortedSet returns a sorted copy of cats without duplicates, nil when empty.
func sortedSet(cats []string) []string {
	if len(cats) == 0 {
		return nil
	}
	out := slices.Clone(cats)
	slices.Sort(out)
	return slices.Compact(out)
}

// encodeCategories is the stored form of a normalised list: a JSON array.
func encodeCategories(cats []string) string {
	if len(cats) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(cats) // a []string always marshals
	return string(b)
}

func decodeCategories(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var cats []string
	if err := json.Unmarshal([]byte(s), &cats); err != nil {
		return nil, fmt.Errorf("stored categories: %w", err)
	}
	if len(cats) == 0 {
		return nil, nil
	}
	return cats, nil
}

// EffectiveCategories returns the categories a profile may act on (SPEC §1):
// when only one of the profile's AllowedCategories and its department's
// Categories is set, that set; when both are, their intersection, and an
// empty intersection means none (cats empty, all false); when neither is,
// every category (all true). d may be nil (no department). cats is sorted
// and without duplicates.
func EffectiveCategories(p Profile, d *Department) (cats []string, all bool) {
	// No validation here: a malformed entry still makes the set non-empty,
	// so bad input narrows access instead of widening it to "all".
	mine := sortedSet(p.AllowedCategories)
	var dept []string
	if d != nil {
		dept = sortedSet(d.Categories)
	}
	switch {
	case len(mine) == 0 && len(dept) == 0:
		return nil, true
	case len(dept) == 0:
		return mine, false
	case len(mine) == 0:
		return dept, false
	}
	for _, c := range mine {
		if _, found := slices.BinarySearch(dept, c); found {
			cats = append(cats, c)
		}
	}
	return cats, false
}
