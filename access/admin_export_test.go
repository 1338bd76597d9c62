package access

// SetGuardHook sets the function every guarded transaction (SetSuperAdmin,
// SetUserActive, DeleteUser) runs right after its invariant check passed,
// and returns a function restoring the previous one. Tests only.
func SetGuardHook(f func()) (restore func()) {
	prev := testHookGuarded
	testHookGuarded = f
	return func() { testHookGuarded = prev }
}
