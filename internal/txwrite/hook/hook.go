// Package hook is where the store packages (users, location, affiliation)
// hand over the writes they keep out of their exported API: the writes that
// run inside a caller's transaction and neither authorise, audit nor update
// the access snapshot, because access.Admin and its import do all three
// around them (SPEC §3). Each store sets its hooks in an init function to
// method expressions of unexported methods; package txwrite is their only
// reader and gives them their types back.
//
// The hooks are typed any because this package sits below the stores (they
// import it) and so cannot name their types. They are written once, during
// package initialisation, and only read afterwards.
package hook

// Set by package users.
var (
	UserCreate           any // func(*users.Store, context.Context, *gorm.DB, users.NewUser) (*users.User, error)
	ProfileCreate        any // func(*users.ProfileStore, context.Context, *gorm.DB, users.Profile) (*users.Profile, error)
	DepartmentCreate     any // func(*users.ProfileStore, context.Context, *gorm.DB, users.Department) (*users.Department, error)
	ProfileSetApproved   any // func(*users.ProfileStore, context.Context, *gorm.DB, string, string, bool) error
	ProfileSetActive     any // func(*users.ProfileStore, context.Context, *gorm.DB, string, string, bool) error
	ProfileDeleteForUser any // func(*users.ProfileStore, context.Context, *gorm.DB, string) error
	ProfileDeleteAt      any // func(*users.ProfileStore, context.Context, *gorm.DB, []string) error
)

// Set by package location.
var (
	LocationCreate any // func(*location.Store, context.Context, *gorm.DB, location.Location) (*location.Location, error)
	LocationMove   any // func(*location.Store, context.Context, *gorm.DB, string, string) error
	LocationDelete any // func(*location.Store, context.Context, *gorm.DB, string) ([]string, error)
)

// Set by package affiliation.
var (
	OrganisationCreate    any // func(*affiliation.Store, context.Context, *gorm.DB, affiliation.Organisation) (*affiliation.Organisation, error)
	OrganisationDelete    any // func(*affiliation.Store, context.Context, *gorm.DB, string) ([]string, error)
	OrganisationsDeleteAt any // func(*affiliation.Store, context.Context, *gorm.DB, []string) ([]string, error)
	Link                  any // func(*affiliation.Store, context.Context, *gorm.DB, affiliation.Link) error
	Unlink                any // func(*affiliation.Store, context.Context, *gorm.DB, string, string) error
	UnlinkAll             any // func(*affiliation.Store, context.Context, *gorm.DB, string) error
)
