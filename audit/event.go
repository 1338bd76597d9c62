package audit

import (
	"errors"
	"time"
)

// Event is one entry of the audit log. Events hold IDs, never names or
// emails. In a decision event ActorID is the subject and ImpersonatorID its
// impersonator; in a change event ActorID is who made the change and UserID
// whose access changed.
type Event struct {
	Seq            int64
	At             time.Time
	Type           string
	ActorID        string
	ImpersonatorID string
	UserID         string
	LocationID     string
	Module         string
	Action         string
	Reason         string
	Allowed        *bool
	Details        map[string]any
}

// Event.Type values.
const (
	TypeGrant               = "grant"
	TypeRevoke              = "revoke"
	TypeMemberAdded         = "member_added"
	TypeApprove             = "approve"
	TypeProfileActive       = "profile_active"
	TypeUserActive          = "user_active"
	TypeUserDeleted         = "user_deleted"
	TypeUserAnonymized      = "user_anonymized"
	TypeSuperAdmin          = "super_admin"
	TypeModuleEnabled       = "module_enabled"
	TypeApprovalRequired    = "approval_required"
	TypeLogin               = "login"
	TypeLoginFailed         = "login_failed"
	TypeLogout              = "logout"
	TypeDecisionDenied      = "decision_denied"
	TypeDecisionAllowed     = "decision_allowed"
	TypeImpersonationStart  = "impersonation_start"
	TypeImpersonationStop   = "impersonation_stop"
	TypeLink                = "link"
	TypeUnlink              = "unlink"
	TypeOrganisationDeleted = "organisation_deleted"
	TypeLocationMoved       = "location_moved"
	TypeLocationDeleted     = "location_deleted"
	TypeRegistryChanged     = "registry_changed"
	TypeUserCreated         = "user_created"
	TypeUserUpdated         = "user_updated"
	TypePasswordChanged     = "password_changed"
	TypeAPIKeyCreated       = "api_key_created"
	TypeAPIKeyRevoked       = "api_key_revoked"
	TypeProfileCreated      = "profile_created"
	TypeProfileUpdated      = "profile_updated"
	TypeDepartmentCreated   = "department_created"
	TypeLocationCreated     = "location_created"
	TypeOrganisationCreated = "organisation_created"
	TypeDecisionsDropped    = "decisions_dropped"
	// TypeAuditKey records that the log links new events under the key
	// whose ID its details name ({"key_id": id}); see Log.RecordKey.
	TypeAuditKey = "audit_key"
)

// Event.Type values of sessions, account recovery and external identities
// (package users). Their events never hold a token, a password or a reset
// secret.
const (
	TypeSessionsEnded          = "sessions_ended"
	TypePasswordResetRequested = "password_reset_requested"
	TypePasswordReset          = "password_reset"
	TypePasswordResetFailed    = "password_reset_failed"
	TypeVerificationSent       = "verification_sent"
	TypeEmailVerified          = "email_verified"
	TypeVerificationFailed     = "verification_failed"
	TypeWelcomeSent            = "welcome_sent"
	TypeMailFailed             = "mail_failed"
	TypeIdentityLinked         = "identity_linked"
	TypeIdentityUnlinked       = "identity_unlinked"
)

// Query selects events. Zero fields do not filter. Results are ascending by
// Seq, at most Limit events (0 means 100, at most 10,000), starting after
// AfterSeq.
type Query struct {
	ActorID, UserID, LocationID, Type string
	Since, Until                      time.Time
	Limit                             int
	AfterSeq                          int64
}

// Limits of Query.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Errors returned by the log.
var (
	// ErrTampered reports that the stored chain does not verify: an event was
	// edited, inserted or removed.
	ErrTampered = errors.New("audit: chain tampered")
	// ErrInvalidInput reports a malformed event or query.
	ErrInvalidInput = errors.New("audit: invalid input")
	// ErrClosed reports use of a closed log.
	ErrClosed = errors.New("audit: log closed")
)
