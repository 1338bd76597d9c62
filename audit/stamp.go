package audit

import (
	"fmt"
	"reflect"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/civicstack/townhall/internal/actor"
)

// Stamp records who created and who last updated a row. Host models embed
// it; with Plugin registered on their *gorm.DB, its fields are filled from
// the subject in the statement's context (access.WithSubject):
//
//	type Permit struct {
//		ID string `gorm:"size:64;primaryKey"`
//		audit.Stamp
//	}
//
//	db.Use(audit.Plugin{})
//	db.WithContext(access.WithSubject(ctx, subject)).Create(&permit)
type Stamp struct {
	// CreatedBy is the user ID that created the row, or "system".
	CreatedBy string `gorm:"size:64"`
	// UpdatedBy is the user ID that last updated the row, or "system".
	UpdatedBy string `gorm:"size:64"`
}

// Plugin is the GORM plugin that fills Stamp fields. Register it once with
// db.Use(audit.Plugin{}).
//
// On create, CreatedBy and UpdatedBy are set to the subject's user ID; with
// no subject in the context, fields left empty are set to "system" and
// fields the caller set are kept (imports may carry their history). On
// update (Save, Update, Updates), UpdatedBy is set to the subject's user ID,
// or "system"; UpdateColumn and UpdateColumns, which skip hooks and time
// tracking, leave it alone. The impersonator, if any, is not stamped: it is
// in the audit event of the change.
type Plugin struct{}

// Name implements gorm.Plugin.
func (Plugin) Name() string { return "townhall:audit_stamp" }

// Initialize implements gorm.Plugin: it registers the create and update
// callbacks.
func (Plugin) Initialize(db *gorm.DB) error {
	if db == nil {
		return fmt.Errorf("audit: plugin: nil database: %w", ErrInvalidInput)
	}
	if err := db.Callback().Create().Before("gorm:create").Register("townhall:audit_stamp_create", stampCreate); err != nil {
		return fmt.Errorf("audit: plugin: %w", err)
	}
	if err := db.Callback().Update().Before("gorm:update").Register("townhall:audit_stamp_update", stampUpdate); err != nil {
		return fmt.Errorf("audit: plugin: %w", err)
	}
	return nil
}

// stampFields returns the model's Stamp fields named in names.
func stampFields(s *schema.Schema, names ...string) []*schema.Field {
	if s == nil {
		return nil
	}
	var fields []*schema.Field
	for _, name := range names {
		f := s.LookUpField(name)
		if f == nil || f.FieldType.Kind() != reflect.String || len(f.BindNames) < 2 || f.BindNames[len(f.BindNames)-2] != "Stamp" {
			continue
		}
		fields = append(fields, f)
	}
	return fields
}

// stampActor returns the user ID to stamp and whether it came from the
// context.
func stampActor(db *gorm.DB) (string, bool) {
	a, ok := actor.From(db.Statement.Context)
	if !ok || a.UserID == "" {
		return actor.SystemID, false
	}
	return a.UserID, true
}

func stampCreate(db *gorm.DB) {
	if db.Error != nil {
		return
	}
	stmt := db.Statement
	fields := stampFields(stmt.Schema, "CreatedBy", "UpdatedBy")
	if len(fields) == 0 {
		return
	}
	who, fromCtx := stampActor(db)
	for _, f := range fields {
		if fromCtx {
			stmt.SetColumn(f.Name, who, true)
			continue
		}
		fillEmpty(stmt, f, who)
	}
}

// fillEmpty sets f to v in every row of the statement where it is empty.
func fillEmpty(stmt *gorm.Statement, f *schema.Field, v string) {
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		fillEmptyMap(dest, f, v)
		return
	case []map[string]any:
		for _, m := range dest {
			fillEmptyMap(m, f, v)
		}
		return
	}
	rv := stmt.ReflectValue
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			fillEmptyValue(stmt, f, reflect.Indirect(rv.Index(i)), v)
		}
	case reflect.Struct:
		fillEmptyValue(stmt, f, rv, v)
	}
}

func fillEmptyMap(m map[string]any, f *schema.Field, v string) {
	for _, k := range []string{f.Name, f.DBName} {
		if s, ok := m[k].(string); ok && s != "" {
			return
		}
	}
	m[f.Name] = v
}

func fillEmptyValue(stmt *gorm.Statement, f *schema.Field, rv reflect.Value, v string) {
	if rv.Kind() != reflect.Struct || !rv.CanAddr() {
		return
	}
	if _, zero := f.ValueOf(stmt.Context, rv); zero {
		stmt.AddError(f.Set(stmt.Context, rv, v))
	}
}

func stampUpdate(db *gorm.DB) {
	if db.Error != nil || db.Statement.SkipHooks {
		return
	}
	stmt := db.Statement
	fields := stampFields(stmt.Schema, "UpdatedBy")
	if len(fields) == 0 {
		return
	}
	who, _ := stampActor(db)
	f := fields[0]
	stmt.SetColumn(f.Name, who, true)
	// A Select that names columns would leave updated_by out; add it unless
	// it is selected already (or everything is) or omitted.
	if len(stmt.Selects) > 0 && !slices.Contains(stmt.Selects, "*") &&
		!slices.Contains(stmt.Selects, f.DBName) && !slices.Contains(stmt.Selects, f.Name) &&
		!slices.Contains(stmt.Omits, f.DBName) && !slices.Contains(stmt.Omits, f.Name) {
		stmt.Selects = append(stmt.Selects, f.DBName)
	}
}
