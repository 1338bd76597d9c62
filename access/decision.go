package access

// Reason says why a decision came out as it did.
type Reason string

// Reasons of allowed decisions.
const (
	ReasonSuperAdmin    Reason = "super_admin"
	ReasonPublic        Reason = "public"
	ReasonAuthenticated Reason = "authenticated"
	ReasonPlatformRole  Reason = "platform_role"
	ReasonRole          Reason = "role"
)

// Reasons of denied decisions. ReasonNotAffiliated, ReasonCategory,
// ReasonOutOfScope, ReasonProfileNotApproved and ReasonProfileInactive mean
// that a grant whose role allows the action failed on that condition; the
// first that applies, in that order, is reported.
const (
	ReasonModuleDisabled     Reason = "module_disabled"
	ReasonUserInactive       Reason = "user_inactive"
	ReasonNotAffiliated      Reason = "not_affiliated"
	ReasonCategory           Reason = "category"
	ReasonOutOfScope         Reason = "out_of_scope"
	ReasonProfileNotApproved Reason = "profile_not_approved"
	ReasonProfileInactive    Reason = "profile_inactive"
	ReasonNoGrant            Reason = "no_grant"
	// ReasonInvalid accompanies the denial returned with an error.
	ReasonInvalid Reason = "invalid_request"
)

// Resource is the record a request acts on. LocationID empty means the
// record has no location; OrganisationID matters for affiliated actions.
type Resource struct {
	LocationID     string
	Category       string
	OrganisationID string
}

// Request asks whether a module action may be performed. Municipality is
// the ID of a municipality-level location; with a Resource it may be empty
// (it is then the municipality containing the resource), and for platform
// modules it may be empty.
type Request struct {
	Municipality string
	Module       string
	Action       string
	Resource     *Resource
}

// Decision is the answer to a request. Role and Domain name the grant that
// allowed it: a platform grant first (Domain "*"), then the grant nearest to
// the resource or municipality, then role name order.
type Decision struct {
	Allowed bool
	Reason  Reason
	Role    string
	Domain  string
}
