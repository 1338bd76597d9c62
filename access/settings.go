package access

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
)

// Table names of the access package.
const (
	ModuleSettingsTable       = snapshot.ModuleSettingsTable
	MunicipalitySettingsTable = snapshot.MunicipalitySettingsTable
)

// Migrate creates or updates the access package's tables. townhall.Open
// calls it under the migration lock; it is idempotent.
func Migrate(tx *gorm.DB) error {
	if err := dbx.TableOptions(tx).AutoMigrate(&snapshot.ModuleSettingRow{}, &snapshot.MunicipalitySettingRow{}, &snapshot.SessionRow{}); err != nil {
		return fmt.Errorf("migrate access: %w", err)
	}
	return nil
}
