package audit

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

// permit is a host model embedding the stamp.
type permit struct {
	ID   string `gorm:"size:64;primaryKey"`
	Name string `gorm:"size:100"`
	Stamp
}

// note has CreatedBy of its own, not a Stamp: the plugin leaves it alone.
type note struct {
	ID        string `gorm:"size:64;primaryKey"`
	CreatedBy string `gorm:"size:64"`
}

func TestPlugin_StampsHostModels(t *testing.T) {
	db := dbtest.New(t)
	require.NoError(t, db.Use(Plugin{}))
	require.NoError(t, dbx.TableOptions(db).AutoMigrate(&permit{}, &note{}))
	alice := actor.With(context.Background(), actor.Actor{UserID: "alice", ImpersonatorID: "root"})
	bob := actor.With(context.Background(), actor.Actor{UserID: "bob"})
	none := context.Background()

	load := func(t *testing.T, id string) permit {
		t.Helper()
		var p permit
		require.NoError(t, db.First(&p, "id = ?", id).Error)
		return p
	}
	create := func(ctx context.Context, p permit) func(t *testing.T) {
		return func(t *testing.T) { require.NoError(t, db.WithContext(ctx).Create(&p).Error) }
	}

	tests := []struct {
		name          string
		id            string
		act           func(t *testing.T)
		wantCreatedBy string
		wantUpdatedBy string
	}{
		{"create with a subject", "p1", create(alice, permit{ID: "p1"}), "alice", "alice"},
		{"create without a subject", "p2", create(none, permit{ID: "p2"}), "system", "system"},
		{"create without a subject keeps given values", "p3",
			create(none, permit{ID: "p3", Stamp: Stamp{CreatedBy: "importer", UpdatedBy: "importer"}}), "importer", "importer"},
		{"create with a subject overrides given values", "p4",
			create(bob, permit{ID: "p4", Stamp: Stamp{CreatedBy: "forged"}}), "bob", "bob"},
		{"batch create", "p6", func(t *testing.T) {
			ps := []permit{{ID: "p5"}, {ID: "p6"}}
			require.NoError(t, db.WithContext(bob).Create(&ps).Error)
		}, "bob", "bob"},
		{"create from a map", "p7", func(t *testing.T) {
			require.NoError(t, db.WithContext(none).Model(&permit{}).Create(map[string]any{"ID": "p7", "Name": "m"}).Error)
		}, "system", "system"},
		{"update one column", "p1", func(t *testing.T) {
			require.NoError(t, db.WithContext(bob).Model(&permit{ID: "p1"}).Update("name", "x").Error)
		}, "alice", "bob"},
		{"updates from a map", "p2", func(t *testing.T) {
			require.NoError(t, db.WithContext(alice).Model(&permit{ID: "p2"}).Updates(map[string]any{"name": "y"}).Error)
		}, "system", "alice"},
		{"updates from a struct", "p3", func(t *testing.T) {
			require.NoError(t, db.WithContext(bob).Model(&permit{ID: "p3"}).Updates(permit{Name: "z"}).Error)
		}, "importer", "bob"},
		{"updates with a select", "p4", func(t *testing.T) {
			require.NoError(t, db.WithContext(alice).Model(&permit{ID: "p4"}).Select("name").Updates(map[string]any{"name": "s"}).Error)
		}, "bob", "alice"},
		{"save", "p5", func(t *testing.T) {
			p := load(t, "p5")
			p.Name = "saved"
			require.NoError(t, db.WithContext(alice).Save(&p).Error)
		}, "bob", "alice"},
		{"update without a subject", "p6", func(t *testing.T) {
			require.NoError(t, db.WithContext(none).Model(&permit{ID: "p6"}).Update("name", "n").Error)
		}, "bob", "system"},
		{"update column skips the stamp", "p7", func(t *testing.T) {
			require.NoError(t, db.WithContext(alice).Model(&permit{ID: "p7"}).UpdateColumn("name", "c").Error)
		}, "system", "system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.act(t)
			got := load(t, tt.id)
			assert.Equal(t, tt.wantCreatedBy, got.CreatedBy, "created by")
			assert.Equal(t, tt.wantUpdatedBy, got.UpdatedBy, "updated by")
		})
	}

	t.Run("models without a stamp are left alone", func(t *testing.T) {
		require.NoError(t, db.WithContext(alice).Create(&note{ID: "n1"}).Error)
		var n note
		require.NoError(t, db.First(&n, "id = ?", "n1").Error)
		assert.Empty(t, n.CreatedBy)
	})
}

func TestPlugin_RejectsNilDatabase(t *testing.T) {
	assert.ErrorIs(t, Plugin{}.Initialize(nil), ErrInvalidInput)
	assert.NotEmpty(t, Plugin{}.Name())
	var _ gorm.Plugin = Plugin{}
}
