package access

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// DocumentVersion is the version of the export document this package
// writes and reads.
const DocumentVersion = 1

// Document is a platform's access data as one versioned JSON document:
// everything a decision reads except impersonation sessions, and no
// secret (no password hash, API key, token or session).
type Document struct {
	Version    int       `json:"version"`
	ExportedAt time.Time `json:"exported_at"`
	// Locations are the live locations, parents before children.
	Locations []location.Location `json:"locations"`
	// DeletedLocations are the deleted ones, parents before children: an
	// import creates them, so that what still refers to them (an
	// organisation, a dormant grant) is reproduced, then deletes them.
	DeletedLocations []location.Location `json:"deleted_locations"`
	Users            []ExportedUser      `json:"users"`
	// DeletedUsers are the IDs of deleted users: an import reserves them
	// (IDs are never reused) as deleted users.
	DeletedUsers   []string                   `json:"deleted_users"`
	Departments    []users.Department         `json:"departments"`
	Profiles       []users.Profile            `json:"profiles"`
	Grants         []ExportedGrant            `json:"grants"`
	Organisations  []affiliation.Organisation `json:"organisations"`
	Links          []affiliation.Link         `json:"links"`
	ModuleSettings []ModuleSetting            `json:"module_settings"`
	Approval       []ApprovalSetting          `json:"approval_settings"`
}

// ExportedUser is a live user without credentials.
type ExportedUser struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	Email      string     `json:"email,omitempty"`
	FirstName  string     `json:"first_name,omitempty"`
	LastName   string     `json:"last_name,omitempty"`
	Kind       users.Kind `json:"kind"`
	Active     bool       `json:"active"`
	Staff      bool       `json:"staff"`
	SuperAdmin bool       `json:"super_admin"`
}

// ExportedGrant is one grant: a role at a location, or at "*".
type ExportedGrant struct {
	UserID     string `json:"user_id"`
	Role       string `json:"role"`
	LocationID string `json:"location_id"`
}

// ModuleSetting is a module's enablement in one municipality (a missing
// setting means enabled).
type ModuleSetting struct {
	Municipality string `json:"municipality"`
	Module       string `json:"module"`
	Enabled      bool   `json:"enabled"`
}

// ApprovalSetting says whether a municipality requires approval of new
// profiles (a missing setting means required).
type ApprovalSetting struct {
	Municipality string `json:"municipality"`
	Required     bool   `json:"required"`
}

// Export reads the platform's access data into a Document. It reads
// committed rows, not the snapshot, each table once.
func (a *Admin) Export(ctx context.Context) (*Document, error) {
	db := a.db.WithContext(ctx)
	doc := &Document{Version: DocumentVersion, ExportedAt: a.now().UTC()}
	tree, err := a.locations.LoadTree(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	depth := map[string]int{}
	for _, l := range tree.Locations() {
		d, _ := tree.Depth(l.ID)
		depth[l.ID] = d
		doc.Locations = append(doc.Locations, l)
	}
	slices.SortFunc(doc.Locations, func(x, y location.Location) int {
		return cmp.Or(cmp.Compare(depth[x.ID], depth[y.ID]), strings.Compare(x.ID, y.ID))
	})
	var deleted []struct {
		ID, Name, Level string
		ParentID        *string
		Depth           int
	}
	if err := db.Table(location.LocationsTable).Select("id, name, level, parent_id, depth").
		Where("deleted_at IS NOT NULL").Order("depth, id").Scan(&deleted).Error; err != nil {
		return nil, fmt.Errorf("export: deleted locations: %w", err)
	}
	for _, l := range deleted {
		doc.DeletedLocations = append(doc.DeletedLocations, location.Location{ID: l.ID, Name: l.Name, Level: l.Level, ParentID: ptrValue(l.ParentID)})
	}
	for after := ""; ; {
		page, err := a.users.List(ctx, users.ListOptions{Limit: users.MaxListLimit, AfterID: after})
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for _, u := range page {
			doc.Users = append(doc.Users, ExportedUser{ID: u.ID, Username: u.Username, Email: u.Email,
				FirstName: u.FirstName, LastName: u.LastName, Kind: u.Kind, Active: u.IsActive,
				Staff: u.IsStaff, SuperAdmin: u.IsSuperAdmin})
			profiles, err := a.profiles.ListForUser(ctx, u.ID)
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			doc.Profiles = append(doc.Profiles, profiles...)
		}
		if len(page) < users.MaxListLimit {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := db.Table(users.UsersTable).Where("deleted_at IS NOT NULL").Order("id").Pluck("id", &doc.DeletedUsers).Error; err != nil {
		return nil, fmt.Errorf("export: deleted users: %w", err)
	}
	for _, l := range doc.Locations {
		if l.Level != location.Municipality {
			continue
		}
		depts, err := a.profiles.Departments(ctx, l.ID)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		doc.Departments = append(doc.Departments, depts...)
	}
	grants, err := policy.AllGrants(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, g := range grants {
		doc.Grants = append(doc.Grants, ExportedGrant{UserID: g.UserID, Role: g.Role, LocationID: g.Domain})
	}
	if doc.Organisations, err = affiliation.LoadOrganisations(ctx, a.db); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if doc.Links, err = affiliation.LoadLinks(ctx, a.db); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var settings []snapshot.ModuleSettingRow
	if err := db.Order("municipality_id, module").Find(&settings).Error; err != nil {
		return nil, fmt.Errorf("export: module settings: %w", err)
	}
	for _, s := range settings {
		doc.ModuleSettings = append(doc.ModuleSettings, ModuleSetting{Municipality: s.MunicipalityID, Module: s.Module, Enabled: s.Enabled})
	}
	var approvals []snapshot.MunicipalitySettingRow
	if err := db.Order("municipality_id").Find(&approvals).Error; err != nil {
		return nil, fmt.Errorf("export: approval settings: %w", err)
	}
	for _, s := range approvals {
		doc.Approval = append(doc.Approval, ApprovalSetting{Municipality: s.MunicipalityID, Required: s.ApprovalRequired})
	}
	return doc, nil
}

// WriteDocument writes doc as indented JSON.
func WriteDocument(w io.Writer, doc *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// maxDocumentBytes bounds a document ReadDocument accepts.
const maxDocumentBytes = 1 << 30

// ReadDocument reads a Document written by WriteDocument. Unknown fields
// and a version other than DocumentVersion are ErrInvalidInput.
func ReadDocument(r io.Reader) (*Document, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxDocumentBytes))
	dec.DisallowUnknownFields()
	var doc Document
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: document: %v", ErrInvalidInput, err)
	}
	if doc.Version != DocumentVersion {
		return nil, fmt.Errorf("%w: document version %d, want %d", ErrInvalidInput, doc.Version, DocumentVersion)
	}
	return &doc, nil
}

// ImportOptions configure Import.
type ImportOptions struct {
	// Merge imports into a database that already holds users, locations or
	// organisations: what the document holds and the database lacks (by
	// ID; grants by user, role and location) is added, what both hold is
	// left as the database has it. Without Merge such a database is
	// refused.
	Merge bool
}

// Import writes doc into the database in one transaction: all of it or,
// on any error, nothing. Only System() and super admins import (it can
// make super admins). Into an empty database the platform then decides
// exactly as the exported one did. Every imported entity is audited
// (location_created, user_created, member_added, grant, ...) in the same
// transaction, so other processes catch up through Sync; this process's
// snapshot is reloaded before Import returns.
func (a *Admin) Import(ctx context.Context, actor Subject, doc *Document, opts ImportOptions) error {
	if doc == nil || doc.Version != DocumentVersion {
		return fmt.Errorf("%w: nil document or version other than %d", ErrInvalidInput, DocumentVersion)
	}
	st, err := a.resolveActor(a.c.snapshot(), actor)
	if err != nil {
		return err
	}
	if !st.system && !st.superAdmin {
		return fmt.Errorf("%w: only System() and super admins import", ErrForbidden)
	}
	im := importer{a: a, actor: actor, merge: opts.Merge}
	err = dbx.Tx(ctx, a.db, func(tx *gorm.DB) error {
		im.tx = tx
		if err := im.run(ctx, doc); err != nil {
			return err
		}
		for _, ev := range im.events {
			if err := a.audit.RecordTx(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return a.c.reload(ctx)
}

// importer is one Import's transaction.
type importer struct {
	a      *Admin
	actor  Subject
	merge  bool
	tx     *gorm.DB
	events []audit.Event
}

func (im *importer) record(ev audit.Event) {
	ev.ActorID = actorID(im.actor)
	ev.ImpersonatorID = im.actor.ImpersonatorID
	im.events = append(im.events, ev)
}

// exists reports whether table holds a row with column = id (deleted rows
// included: IDs are never reused).
func (im *importer) exists(table, column, id string) (bool, error) {
	var n int64
	err := im.tx.Table(table).Where(column+" = ?", id).Count(&n).Error
	return n > 0, err
}

func (im *importer) run(ctx context.Context, doc *Document) error {
	if !im.merge {
		for _, table := range []string{users.UsersTable, location.LocationsTable, affiliation.OrganisationsTable} {
			var n int64
			if err := im.tx.Table(table).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: the database is not empty (%s holds %d rows): import with merging, or into an empty database",
					ErrInvalidInput, table, n)
			}
		}
	}
	a := im.a
	// Profiles and departments check their locations through this
	// transaction, which holds the locations created below.
	profiles := a.profiles.WithLocations(txLocations{a.locations, im.tx})
	// Deleted locations are created with the live ones (parents first) and
	// deleted once everything that refers to them is in.
	all := append(slices.Clone(doc.Locations), doc.DeletedLocations...)
	depth := parentsFirst(all)
	slices.SortStableFunc(all, func(x, y location.Location) int { return cmp.Compare(depth[x.ID], depth[y.ID]) })
	for _, l := range all {
		if found, err := im.exists(location.LocationsTable, "id", l.ID); err != nil || found {
			if err != nil {
				return err
			}
			continue
		}
		if _, err := txwrite.CreateLocation(ctx, im.tx, a.locations, l); err != nil {
			return fmt.Errorf("location %q: %w", l.ID, err)
		}
		im.record(audit.Event{Type: audit.TypeLocationCreated, LocationID: l.ID,
			Details: map[string]any{"level": l.Level, "parent_id": l.ParentID, "imported": true}})
	}
	for _, s := range doc.ModuleSettings {
		if !dbx.ValidID(s.Municipality) || !validName(s.Module) {
			return fmt.Errorf("%w: module setting %q in %q", ErrInvalidInput, s.Module, s.Municipality)
		}
		row := snapshot.ModuleSettingRow{MunicipalityID: s.Municipality, Module: s.Module, Enabled: s.Enabled, UpdatedAt: a.now().UTC()}
		if err := im.setting(&row, s.Municipality, "module = ?", s.Module); err != nil {
			return err
		}
		im.record(audit.Event{Type: audit.TypeModuleEnabled, LocationID: s.Municipality, Module: s.Module,
			Details: map[string]any{"enabled": s.Enabled, "imported": true}})
	}
	for _, s := range doc.Approval {
		if !dbx.ValidID(s.Municipality) {
			return fmt.Errorf("%w: approval setting of %q", ErrInvalidInput, s.Municipality)
		}
		row := snapshot.MunicipalitySettingRow{MunicipalityID: s.Municipality, ApprovalRequired: s.Required, UpdatedAt: a.now().UTC()}
		if err := im.setting(&row, s.Municipality, ""); err != nil {
			return err
		}
		im.record(audit.Event{Type: audit.TypeApprovalRequired, LocationID: s.Municipality,
			Details: map[string]any{"required": s.Required, "imported": true}})
	}
	for _, d := range doc.Departments {
		if found, err := im.exists(users.DepartmentsTable, "id", d.ID); err != nil || found {
			if err != nil {
				return err
			}
			continue
		}
		if _, err := txwrite.CreateDepartment(ctx, im.tx, profiles, d); err != nil {
			return err
		}
		im.record(audit.Event{Type: audit.TypeDepartmentCreated, LocationID: d.MunicipalityID,
			Details: map[string]any{"department_id": d.ID, "imported": true}})
	}
	if err := im.users(ctx, doc); err != nil {
		return err
	}
	for _, p := range doc.Profiles {
		if _, err := profiles.GetTx(ctx, im.tx, p.UserID, p.LocationID); err == nil {
			continue
		} else if !errors.Is(err, users.ErrNotFound) {
			return err
		}
		p.ID = "" // profile IDs are the database's
		if _, err := txwrite.CreateProfile(ctx, im.tx, profiles, p); err != nil {
			return fmt.Errorf("profile of %q at %q: %w", p.UserID, p.LocationID, err)
		}
		im.record(audit.Event{Type: audit.TypeMemberAdded, UserID: p.UserID, LocationID: p.LocationID,
			Details: map[string]any{"imported": true}})
	}
	reg := a.c.snapshot().Reg
	for _, g := range doc.Grants {
		if _, ok := roleIndex(reg, g.Role); !ok {
			return fmt.Errorf("grant of %q at %q: %w %q", g.UserID, g.LocationID, ErrUnknownRole, g.Role)
		}
		if !dbx.ValidID(g.UserID) || g.LocationID != policy.PlatformDomain && !dbx.ValidID(g.LocationID) {
			return fmt.Errorf("%w: grant of %q at %q", ErrInvalidInput, g.UserID, g.LocationID)
		}
		if _, err := insertGrant(im.tx, g.UserID, g.Role, g.LocationID); err != nil {
			return err
		}
		im.record(audit.Event{Type: audit.TypeGrant, UserID: g.UserID, LocationID: g.LocationID,
			Details: map[string]any{"role": g.Role, "imported": true}})
	}
	for _, o := range doc.Organisations {
		if found, err := im.exists(affiliation.OrganisationsTable, "id", o.ID); err != nil || found {
			if err != nil {
				return err
			}
			continue
		}
		if _, err := txwrite.CreateOrganisation(ctx, im.tx, a.affiliations, o); err != nil {
			return err
		}
		im.record(audit.Event{Type: audit.TypeOrganisationCreated, LocationID: o.LocationID,
			Details: map[string]any{"organisation_id": o.ID, "imported": true}})
	}
	for _, l := range doc.Links {
		if err := txwrite.Link(ctx, im.tx, a.affiliations, l); err != nil {
			if im.merge && errors.Is(err, affiliation.ErrDuplicate) {
				continue // the database holds this link already
			}
			return err
		}
		im.record(audit.Event{Type: audit.TypeLink, UserID: l.UserID,
			Details: map[string]any{"organisation_id": l.OrganisationID, "imported": true}})
	}
	for _, l := range doc.DeletedLocations {
		gone, err := txwrite.DeleteLocation(ctx, im.tx, a.locations, l.ID)
		if errors.Is(err, location.ErrNotFound) {
			continue // deleted with an ancestor, or there already
		}
		if err != nil {
			return fmt.Errorf("deleted location %q: %w", l.ID, err)
		}
		im.record(audit.Event{Type: audit.TypeLocationDeleted, LocationID: l.ID,
			Details: map[string]any{"deleted": gone, "imported": true}})
	}
	return im.deletedUsers(ctx, doc)
}

// users imports live users (without credentials) with their flags.
func (im *importer) users(ctx context.Context, doc *Document) error {
	a := im.a
	for _, u := range doc.Users {
		if found, err := im.exists(users.UsersTable, "id", u.ID); err != nil || found {
			if err != nil {
				return err
			}
			continue
		}
		if u.ID == SystemActorID {
			return fmt.Errorf("%w: user id %q is reserved", ErrInvalidInput, u.ID)
		}
		if _, err := txwrite.CreateUser(ctx, im.tx, a.users, users.NewUser{ID: u.ID, Username: u.Username, Email: u.Email,
			FirstName: u.FirstName, LastName: u.LastName, Kind: u.Kind, IsStaff: u.Staff}); err != nil {
			return fmt.Errorf("user %q: %w", u.ID, err)
		}
		if u.SuperAdmin {
			if err := userwrite.SetSuperAdmin(ctx, im.tx, a.now(), u.ID, true); err != nil {
				return err
			}
		}
		if !u.Active {
			if err := userwrite.SetActive(ctx, im.tx, a.now(), u.ID, false); err != nil {
				return err
			}
		}
		im.record(audit.Event{Type: audit.TypeUserCreated, UserID: u.ID,
			Details: map[string]any{"kind": string(cmp.Or(u.Kind, users.Interactive)), "super_admin": u.SuperAdmin, "active": u.Active, "imported": true}})
	}
	return nil
}

// deletedUsers reserves the IDs of deleted users.
func (im *importer) deletedUsers(ctx context.Context, doc *Document) error {
	a := im.a
	for _, id := range doc.DeletedUsers {
		if found, err := im.exists(users.UsersTable, "id", id); err != nil || found {
			if err != nil {
				return err
			}
			continue
		}
		// A placeholder username, replaced by anonymisation's deleted-<id>
		// before the commit.
		if _, err := txwrite.CreateUser(ctx, im.tx, a.users, users.NewUser{ID: id, Username: "import-" + dbx.NewID()}); err != nil {
			return fmt.Errorf("deleted user %q: %w", id, err)
		}
		if err := userwrite.Delete(ctx, im.tx, a.now(), id); err != nil {
			return err
		}
		if err := userwrite.Anonymize(ctx, im.tx, a.now(), id); err != nil {
			return err
		}
		im.record(audit.Event{Type: audit.TypeUserDeleted, UserID: id, Details: map[string]any{"imported": true}})
	}
	return nil
}

// setting writes a settings row unless merging into a database that has
// one for the same key.
func (im *importer) setting(row any, municipality, extra string, args ...any) error {
	if im.merge {
		q := im.tx.Model(row).Where("municipality_id = ?", municipality)
		if extra != "" {
			q = q.Where(extra, args...)
		}
		var n int64
		if err := q.Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return upsert(im.tx, row)
}

// txLocations reads locations inside a transaction (users.Locations).
type txLocations struct {
	s  *location.Store
	tx *gorm.DB
}

func (l txLocations) Get(ctx context.Context, id string) (*location.Location, error) {
	return l.s.GetTx(ctx, l.tx, id)
}

func ptrValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parentsFirst returns the depth of each location within locs (parents
// outside locs count as roots; a cycle is cut where it is found), so that
// sorting by it puts parents before children.
func parentsFirst(locs []location.Location) map[string]int {
	parent := make(map[string]string, len(locs))
	for _, l := range locs {
		parent[l.ID] = l.ParentID
	}
	depth := make(map[string]int, len(locs))
	var walk func(id string, seen int) int
	walk = func(id string, seen int) int {
		if d, ok := depth[id]; ok {
			return d
		}
		p, ok := parent[id]
		if !ok || p == "" || seen > len(locs) {
			depth[id] = 0
			return 0
		}
		d := walk(p, seen+1) + 1
		depth[id] = d
		return d
	}
	for _, l := range locs {
		walk(l.ID, 0)
	}
	return depth
}
