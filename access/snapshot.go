package access

import (
	"github.com/civicstack/townhall/location"
)

// snapshot is everything a decision needs, held in memory so that a check
// never touches the database. The Checker guards it with a RWMutex; writers
// build replacement parts off-lock and swap them in under the write lock, so
// a check never observes a half-applied change.
type snapshot struct {
	reg  *compiled
	tree *location.Tree

	users       map[string]*userState
	departments map[string]categorySet // department ID → its categories
	// disabled holds, per module, the municipalities where it is disabled.
	disabled map[string]map[string]struct{}
	// approvalOff holds the municipalities that do not require approval.
	approvalOff map[string]struct{}

	orgs     map[string]*orgState
	links    map[string]map[string][]window // user → organisation → link windows
	sessions sessions                       // live impersonation sessions
}

// userState is one user's part of the snapshot. It is replaced whole on
// every change to the user, its profiles or its grants, never mutated.
type userState struct {
	deleted, active, superAdmin, technical bool
	profiles                               map[string]*profileState // by location ID
	grants                                 []grant                  // location "*" = platform grant
}

// grant is one role held at a location (or "*").
type grant struct {
	role     int // index into compiled.roles
	location string
}

type profileState struct {
	approved, active bool
	department       string
	allowed          categorySet
}

// categorySet is a set of categories; nil means "not set" (no restriction
// from this source).
type categorySet map[string]struct{}

func newCategorySet(cats []string) categorySet {
	if len(cats) == 0 {
		return nil
	}
	s := make(categorySet, len(cats))
	for _, c := range cats {
		s[c] = struct{}{}
	}
	return s
}

// allowsCategory reports whether category lies in the profile's effective
// categories (SPEC §1): the intersection of the profile's and the
// department's sets where set, all categories where neither is. A record
// with no category passes only when neither set restricts.
func (s *snapshot) allowsCategory(p *profileState, category string) bool {
	dept := s.departments[p.department]
	for _, set := range []categorySet{p.allowed, dept} {
		if set == nil {
			continue
		}
		if _, ok := set[category]; !ok || category == "" {
			return false
		}
	}
	return true
}

// unrestrictedCategories reports whether the profile sees every category.
func (s *snapshot) unrestrictedCategories(p *profileState) bool {
	return p.allowed == nil && s.departments[p.department] == nil
}

// anchor returns the user's profile at the nearest ancestor-or-self of loc.
func (s *snapshot) anchor(u *userState, loc string) (*profileState, string) {
	for id := loc; id != ""; id, _ = s.tree.Parent(id) {
		if p, ok := u.profiles[id]; ok {
			return p, id
		}
	}
	return nil, ""
}

// moduleEnabled reports whether module is enabled in municipality (always
// for platform modules and for an empty municipality).
func (s *snapshot) moduleEnabled(module, municipality string) bool {
	if municipality == "" {
		return true
	}
	_, off := s.disabled[module][municipality]
	return !off
}

// depth returns the depth of a live location (0 when unknown).
func (s *snapshot) depth(id string) int {
	d, _ := s.tree.Depth(id)
	return d
}

// enabledEverywhere reports whether no municipality disables module.
func (s *snapshot) enabledEverywhere(module string) bool {
	return len(s.disabled[module]) == 0
}
