package snapshot

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// The snapshot's per-user cost is set by these sizes, each at the top of
// an allocation class (BENCHMARKS.md, issue 14): a field added to one of
// them moves every user's record into the next class.
func TestLayout_RecordsStayInTheirAllocationClass(t *testing.T) {
	assert.EqualValues(t, 8, unsafe.Sizeof(Grant{}), "Grant")
	assert.EqualValues(t, 24, unsafe.Sizeof(ProfileState{}), "ProfileState")
	assert.EqualValues(t, 32, unsafe.Sizeof(profileRef{}), "ProfileRef")
	assert.EqualValues(t, 96, unsafe.Sizeof(UserState{}), "UserState")
}
