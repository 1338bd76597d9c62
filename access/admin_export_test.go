package access

// SetGuardHook sets the function every guarded transaction (SetSuperAdmin,
// SetUserActive, DeleteUser) runs right after its invariant check passed,
// and returns a function restoring the previous one. Tests only.
func SetGuardHook(f func()) (restore func()) {
	prev := testHookGuarded
	testHookGuarded = f
	return func() { testHookGuarded = prev }
}

// JudgeUnchanged runs the result check of a change by actor that leaves
// userIDs as they are in the current snapshot (before and after are the
// same snapshot): the cost of judging, without a database. Benchmarks only.
func JudgeUnchanged(c *Checker, actor Subject, userIDs ...string) error {
	cur := c.snapshot()
	st, err := (&Admin{c: c}).resolveActor(cur, actor)
	if err != nil {
		return err
	}
	return judge(cur, cur, st, userIDs, "", c.now())
}
