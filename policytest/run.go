package policytest

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Report is the outcome of running one file.
type Report struct {
	File     string
	Passed   int
	Failures []Failure
}

// OK reports whether every expectation held.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// Failure is one expectation that did not hold.
type Failure struct {
	// Expectation names it: "checks[2]", "who_can[0]", ...
	Expectation string
	// Line is its line in the file (0 when unknown).
	Line int
	// Message says what was expected and what came instead.
	Message string
	// Explanation is the decision's explanation, for checks.
	Explanation string
}

// String renders the failure as file:line: expectation: message, then the
// explanation indented.
func (f Failure) String() string {
	s := fmt.Sprintf("line %d: %s: %s", f.Line, f.Expectation, f.Message)
	if f.Explanation != "" {
		s += "\n" + strings.TrimRight(f.Explanation, "\n")
	}
	return s
}

// RunFile loads the file at path and runs it (see File.Run).
func RunFile(ctx context.Context, path string) (*Report, error) {
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	return f.Run(ctx)
}

// Run builds the file's fixtures on a throw-away embedded SQLite database
// (through the public API, as access.System()) and checks every
// expectation against it. An error means the fixtures could not be built;
// expectations that do not hold are the report's failures.
func (f *File) Run(ctx context.Context) (*Report, error) {
	dir, err := os.MkdirTemp("", "townhall-policytest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := townhall.OpenSQLite(filepath.Join(dir, "policy.db"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	opts := []townhall.Option{townhall.WithRegistry(f.registry), townhall.WithSyncInterval(-1)}
	if len(f.Levels) > 0 {
		opts = append(opts, townhall.WithLevels(f.Levels...))
	}
	if !f.now.IsZero() {
		now := f.now
		opts = append(opts, townhall.WithClock(func() time.Time { return now }))
	}
	p, err := townhall.Open(ctx, db, opts...)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := f.build(ctx, p); err != nil {
		return nil, err
	}
	r := &Report{File: f.Path}
	f.expect(ctx, p, r)
	return r, nil
}

// build creates the fixtures in dependency order.
func (f *File) build(ctx context.Context, p *townhall.Platform) error {
	sys := access.System()
	ctx = access.WithSubject(ctx, sys)
	for i, l := range f.Locations {
		if _, err := p.Locations.Create(ctx, location.Location{ID: l.ID, Name: l.Name, Level: l.Level, ParentID: l.Parent}); err != nil {
			return fmt.Errorf("locations[%d]: %w", i, err)
		}
	}
	for i, s := range f.Settings {
		if s.ApprovalRequired != nil {
			if err := p.Admin.SetApprovalRequired(ctx, sys, s.Municipality, *s.ApprovalRequired); err != nil {
				return fmt.Errorf("settings[%d]: %w", i, err)
			}
		}
		if s.Module != "" {
			if err := p.Admin.SetModuleEnabled(ctx, sys, s.Municipality, s.Module, s.Enabled == nil || *s.Enabled); err != nil {
				return fmt.Errorf("settings[%d]: %w", i, err)
			}
		}
	}
	for i, d := range f.Departments {
		if _, err := p.Profiles.CreateDepartment(ctx, users.Department{ID: d.ID, MunicipalityID: d.Municipality, Name: cmp.Or(d.Name, d.ID), Categories: d.Categories}); err != nil {
			return fmt.Errorf("departments[%d]: %w", i, err)
		}
	}
	for i, u := range f.Users {
		nu := users.NewUser{ID: u.ID, Username: u.Username, Kind: users.Kind(u.Kind), IsStaff: u.Staff}
		if nu.Username == "" {
			nu.Username = u.ID
		}
		if _, err := p.Users.Create(ctx, nu); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		if u.SuperAdmin {
			if err := p.Admin.SetSuperAdmin(ctx, sys, u.ID, true); err != nil {
				return fmt.Errorf("users[%d]: %w", i, err)
			}
		}
	}
	for i, m := range f.Members {
		prof, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: m.User, LocationID: m.Location, Role: m.Role,
			DepartmentID: m.Department, AllowedCategories: m.Categories})
		if err != nil {
			return fmt.Errorf("members[%d]: %w", i, err)
		}
		approved := m.Approved == nil || *m.Approved
		switch {
		case approved && !prof.IsApproved:
			if err := p.Admin.Approve(ctx, sys, m.User, m.Location); err != nil {
				return fmt.Errorf("members[%d]: %w", i, err)
			}
		case !approved && prof.IsApproved:
			return fmt.Errorf("members[%d]: %w: approved: false, but %s does not require approval", i, ErrInvalidFile, m.Location)
		}
		if m.Active != nil && !*m.Active {
			if err := p.Admin.SetProfileActive(ctx, sys, m.User, m.Location, false); err != nil {
				return fmt.Errorf("members[%d]: %w", i, err)
			}
		}
	}
	for i, g := range f.Grants {
		if err := p.Admin.Grant(ctx, sys, g.User, g.Role, g.Location); err != nil {
			return fmt.Errorf("grants[%d]: %w", i, err)
		}
	}
	for i, o := range f.Organisations {
		if _, err := p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: o.ID, Name: cmp.Or(o.Name, o.ID), Kind: o.Kind,
			LocationID: o.Location, Services: o.Services}); err != nil {
			return fmt.Errorf("organisations[%d]: %w", i, err)
		}
	}
	for i, l := range f.Links {
		link := affiliation.Link{UserID: l.User, OrganisationID: l.Organisation}
		var err error
		if link.ValidFrom, err = optTime(l.From); err != nil {
			return fmt.Errorf("links[%d]: from: %w", i, err)
		}
		if link.ValidTo, err = optTime(l.To); err != nil {
			return fmt.Errorf("links[%d]: to: %w", i, err)
		}
		if err := p.Admin.Link(ctx, sys, link); err != nil {
			return fmt.Errorf("links[%d]: %w", i, err)
		}
	}
	// Deactivations last: they must not stop the fixtures above.
	for i, u := range f.Users {
		if u.Active != nil && !*u.Active {
			if err := p.Admin.SetUserActive(ctx, sys, u.ID, false); err != nil {
				return fmt.Errorf("users[%d]: %w", i, err)
			}
		}
	}
	return nil
}

func optTime(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFile, err)
	}
	return &t, nil
}

// expect checks every expectation, adding failures to r.
func (f *File) expect(ctx context.Context, p *townhall.Platform, r *Report) {
	fail := func(name string, i, line int, msg, explanation string) {
		r.Failures = append(r.Failures, Failure{Expectation: fmt.Sprintf("%s[%d]", name, i), Line: line, Message: msg, Explanation: explanation})
	}
	for i, c := range f.Checks {
		s := access.Subject{UserID: c.User, ImpersonatorID: c.Impersonator}
		req := access.Request{Municipality: c.Municipality, Module: c.Module, Action: c.Action}
		if c.Resource != nil {
			req.Resource = &access.Resource{LocationID: c.Resource.Location, Category: c.Resource.Category, OrganisationID: c.Resource.Organisation}
		}
		ex := p.Checker.Explain(ctx, s, req)
		if msg := c.mismatch(ex); msg != "" {
			fail("checks", i, c.line, describe(c.User, req)+": "+msg, ex.String())
			continue
		}
		r.Passed++
	}
	for i, e := range f.Filters {
		lf, err := p.Checker.LocationFilter(ctx, access.Subject{UserID: e.User}, e.Module, e.Action)
		if err != nil {
			fail("filters", i, e.line, err.Error(), "")
			continue
		}
		var wrong []string
		for _, loc := range e.Contains {
			if !lf.Contains(loc) {
				wrong = append(wrong, "does not contain "+loc)
			}
		}
		for _, loc := range e.Excludes {
			if lf.Contains(loc) {
				wrong = append(wrong, "contains "+loc)
			}
		}
		if len(wrong) > 0 {
			fail("filters", i, e.line, fmt.Sprintf("%s %s.%s: the filter %s", userName(e.User), e.Module, e.Action, strings.Join(wrong, ", ")), "")
			continue
		}
		r.Passed++
	}
	for i, e := range f.WhoCan {
		got, err := p.Checker.Subjects(ctx, e.Module, e.Action, e.Location)
		if err != nil {
			fail("who_can", i, e.line, err.Error(), "")
			continue
		}
		if msg := sameSet(e.Users, got); msg != "" {
			fail("who_can", i, e.line, fmt.Sprintf("%s.%s at %s: %s", e.Module, e.Action, e.Location, msg), "")
			continue
		}
		r.Passed++
	}
	for i, e := range f.WhatCan {
		perms, err := p.Checker.Permissions(ctx, access.Subject{UserID: e.User}, e.Municipality)
		if err != nil {
			fail("what_can", i, e.line, err.Error(), "")
			continue
		}
		got := make([]string, len(perms))
		for k, ma := range perms {
			got[k] = ma.Module + "." + ma.Action
		}
		if msg := sameSet(e.Actions, got); msg != "" {
			fail("what_can", i, e.line, fmt.Sprintf("%s in %s: %s", userName(e.User), e.Municipality, msg), "")
			continue
		}
		r.Passed++
	}
}

// mismatch compares a check's expectation with the explained decision.
func (c *Check) mismatch(ex access.Explanation) string {
	d := ex.Decision
	if c.Error != "" {
		if ex.Err == nil || !strings.Contains(ex.Err.Error(), c.Error) {
			return fmt.Sprintf("want an error containing %q, got %v", c.Error, ex.Err)
		}
		return ""
	}
	if ex.Err != nil {
		return "error: " + ex.Err.Error()
	}
	var wrong []string
	if *c.Allow != d.Allowed {
		wrong = append(wrong, fmt.Sprintf("want allow: %v, got %v", *c.Allow, d.Allowed))
	}
	if c.Reason != "" && c.Reason != string(d.Reason) {
		wrong = append(wrong, fmt.Sprintf("want reason: %s, got %s", c.Reason, d.Reason))
	}
	if c.Role != "" && c.Role != d.Role {
		wrong = append(wrong, fmt.Sprintf("want role: %s, got %q", c.Role, d.Role))
	}
	if c.Domain != "" && c.Domain != d.Domain {
		wrong = append(wrong, fmt.Sprintf("want domain: %s, got %q", c.Domain, d.Domain))
	}
	return strings.Join(wrong, "; ")
}

func userName(id string) string {
	if id == "" {
		return "anonymous"
	}
	return id
}

func describe(user string, req access.Request) string {
	s := fmt.Sprintf("%s %s.%s", userName(user), req.Module, req.Action)
	if req.Municipality != "" {
		s += " in " + req.Municipality
	}
	if r := req.Resource; r != nil {
		var fields []string
		for _, f := range [][2]string{{"location", r.LocationID}, {"category", r.Category}, {"organisation", r.OrganisationID}} {
			if f[1] != "" {
				fields = append(fields, f[0]+": "+f[1])
			}
		}
		s += " on {" + strings.Join(fields, ", ") + "}"
	}
	return s
}

// sameSet reports how got differs from want as sets ("" when equal).
func sameSet(want, got []string) string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "unexpected "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ")
}
