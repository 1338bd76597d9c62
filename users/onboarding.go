package users

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/policy"
)

// Checklist is the onboarding state of a user at a municipality (SPEC §4).
type Checklist struct {
	UserID         string
	MunicipalityID string

	UserCreated    bool // the user exists and is not deleted
	ProfileCreated bool // the user has a live profile at the municipality
	RoleAssigned   bool // the user holds a role granted at the municipality
	DepartmentSet  bool // that profile names a department
	CategoriesSet  bool // that profile lists allowed categories
	Approved       bool // that profile is approved
	WelcomeSent    bool // the welcome message went out (Store.SendWelcome)
}

// Done reports whether every step is complete.
func (c Checklist) Done() bool {
	return c.UserCreated && c.ProfileCreated && c.RoleAssigned &&
		c.DepartmentSet && c.CategoriesSet && c.Approved && c.WelcomeSent
}

// String renders the checklist one step a line, "[x]" for done steps:
//
//	onboarding of user u1 at m1:
//	[x] user created
//	[ ] profile created
//	...
func (c Checklist) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "onboarding of user %s at %s:\n", c.UserID, c.MunicipalityID)
	for _, step := range []struct {
		done bool
		name string
	}{
		{c.UserCreated, "user created"},
		{c.ProfileCreated, "profile created"},
		{c.RoleAssigned, "role assigned"},
		{c.DepartmentSet, "department set"},
		{c.CategoriesSet, "categories set"},
		{c.Approved, "approved"},
		{c.WelcomeSent, "welcome email sent"},
	} {
		mark := " "
		if step.done {
			mark = "x"
		}
		fmt.Fprintf(&b, "[%s] %s\n", mark, step.name)
	}
	return b.String()
}

// Onboarding reports the onboarding checklist of userID at municipalityID.
// An unknown or deleted user gives an all-unchecked list, not an error;
// location.ErrNotFound for an unknown municipality, ErrInvalidInput (with
// location.ErrInvalidLevel) for a location of another level.
func (s *ProfileStore) Onboarding(ctx context.Context, userID, municipalityID string) (Checklist, error) {
	c := Checklist{UserID: userID, MunicipalityID: municipalityID}
	if err := validateID(userID, "user id"); err != nil {
		return c, fmt.Errorf("onboarding: %w", err)
	}
	if err := validateID(municipalityID, "municipality id"); err != nil {
		return c, fmt.Errorf("onboarding: %w", err)
	}
	if _, err := s.municipality(ctx, municipalityID); err != nil {
		return c, fmt.Errorf("onboarding: %w", err)
	}
	db := s.db.WithContext(ctx)
	var user userRow
	switch err := db.Where("id = ?", userID).Take(&user).Error; {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return c, nil
	case err != nil:
		return c, fmt.Errorf("onboarding: %w", err)
	}
	c.UserCreated = true
	c.WelcomeSent = user.WelcomeSentAt != nil
	holders, err := policy.HoldersAt(db, policy.Holders{Domains: []string{municipalityID}, Among: []string{userID}})
	if err != nil {
		return c, fmt.Errorf("onboarding: %w", err)
	}
	c.RoleAssigned = len(holders) > 0
	p, err := s.Get(ctx, userID, municipalityID)
	switch {
	case errors.Is(err, ErrNotFound):
		return c, nil
	case err != nil:
		return c, fmt.Errorf("onboarding: %w", err)
	}
	c.ProfileCreated = true
	c.DepartmentSet = p.DepartmentID != ""
	c.CategoriesSet = len(p.AllowedCategories) > 0
	c.Approved = p.IsApproved
	return c, nil
}
