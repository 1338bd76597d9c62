//go:build !linux

package access_test

import "time"

// threadCPU is not measured off Linux: benchmarks report 0 cpu-ns/op.
func threadCPU() time.Duration { return 0 }
