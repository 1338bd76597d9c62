package access

import "errors"

// Errors returned by the checker, the registry and Admin. Callers branch
// with errors.Is.
var (
	// ErrForbidden reports a refused change.
	ErrForbidden = errors.New("access: forbidden")
	// ErrUnknownModule reports a module the registry does not declare.
	ErrUnknownModule = errors.New("access: unknown module")
	// ErrUnknownAction reports an action the module does not declare.
	ErrUnknownAction = errors.New("access: unknown action")
	// ErrUnknownRole reports a role the registry does not declare.
	ErrUnknownRole = errors.New("access: unknown role")
	// ErrInvalidInput reports malformed input: empty or malformed IDs, a
	// municipality that is not of the municipality level, a malformed
	// registry file, an invalid column name.
	ErrInvalidInput = errors.New("access: invalid input")
	// ErrLastSuperAdmin reports a change that would leave no active super
	// admin. It also matches ErrForbidden.
	ErrLastSuperAdmin = &forbiddenError{msg: "access: last active super admin"}
	// ErrInvalidToken reports an expired, stopped, unknown or forged
	// impersonation token, or a subject whose impersonation is not live.
	ErrInvalidToken = errors.New("access: invalid token")
)

// forbiddenError is a refusal that is more specific than ErrForbidden but
// still matches it.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string        { return e.msg }
func (e *forbiddenError) Is(target error) bool { return target == ErrForbidden }
