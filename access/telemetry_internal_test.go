package access

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/civicstack/townhall/internal/telemetry"
)

func TestReasonIndex_EveryReasonHasItsOwnCounter(t *testing.T) {
	seen := map[int]Reason{}
	for _, r := range checkReasons {
		i := reasonIndex(r)
		require.Less(t, i, numReasons)
		assert.Equal(t, r, checkReasons[i], "reason %q", r)
		if prev, dup := seen[i]; dup {
			t.Errorf("reasons %q and %q share counter %d", prev, r, i)
		}
		seen[i] = r
	}
	assert.Len(t, seen, numReasons)
	for _, r := range []Reason{"", "x", "rolf", "super_adminx", "rose", "pubcil"} {
		assert.Equal(t, numReasons-1, reasonIndex(r), "an unlisted reason %q counts as the last", r)
	}
}

// TestObserver_TimedCheckAllocatesNothing measures the path of a sampled
// check (counter and histogram) on every run, so a single allocation in it
// would show.
func TestObserver_TimedCheckAllocatesNothing(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	o, err := newObserver(telemetry.New(nil, nil, mp), false, time.Now)
	require.NoError(t, err)
	ctx := context.Background()
	decisions := []Decision{{Allowed: true, Reason: ReasonRole}, {Reason: ReasonNoGrant}}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		p := o.beginCheck(ctx, &Request{Module: "m", Action: "a"})
		p.start = o.clock() // as if sampled
		o.endCheck(ctx, p, decisions[i%2], nil)
		i++
	})
	assert.Zero(t, allocs)
	assert.Equal(t, int64(501), o.checks[outcomeAllowed][reasonIndex(ReasonRole)].Load(), "AllocsPerRun runs once more to warm up")
}
