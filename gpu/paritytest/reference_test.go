package paritytest_test

import (
	"testing"

	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// The CPU backend against the float64 references lives in gpu/cpu; here the
// harness checks itself: a CPU backend in parity with another.
func TestParityCPUvsCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	a, b := cpu.New(), cpu.New()
	defer a.Close()
	defer b.Close()
	paritytest.RunParity(t, a, b)
}
