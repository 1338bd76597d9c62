package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun_OnboardsStaffEndToEnd(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), filepath.Join(t.TempDir(), "townhall.db"), &out))
	text := out.String()

	steps := strings.Split(text, "\n== ")
	require.Len(t, steps, 4, text)
	assert.Contains(t, steps[1], "[x] user created\n[ ] profile created")
	assert.Contains(t, steps[2], "[x] categories set\n[ ] approved")
	assert.NotContains(t, steps[3], "[ ]", "every step is done after approval")
	assert.Contains(t, steps[3], "[x] welcome email sent")
	assert.Contains(t, text, "mail: welcome message for user olga")
	assert.Contains(t, text, "olga updates a pothole report: denied (profile_not_approved)")
	assert.Contains(t, text, "olga updates a pothole report: allowed (role)")
	assert.Contains(t, text, "olga updates a streetlight report: denied (category)")
	assert.Contains(t, text, "olga grants herself admin: refused")
	assert.Contains(t, text, "grant           by olga (refused)")
	assert.NotContains(t, text, "Berg", "audit events hold IDs, never names")
}
