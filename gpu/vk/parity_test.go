package vk

import (
	"os"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// openParity opens the best Vulkan device through gpu.Open (validation with
// BLIP_VALIDATE=1). Without one the test is skipped, unless
// BLIP_REQUIRE_VULKAN=1 makes that a failure.
func openParity(t *testing.T) gpu.Backend {
	t.Helper()
	b, err := gpu.Open(gpu.Options{Backend: "vulkan", Device: -1, Validate: os.Getenv("BLIP_VALIDATE") == "1"})
	if err != nil {
		if os.Getenv("BLIP_REQUIRE_VULKAN") == "1" {
			t.Fatalf("BLIP_REQUIRE_VULKAN=1 but no Vulkan device: %v", err)
		}
		t.Skipf("no Vulkan device: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close %s: %v", b.Name(), err)
		}
	})
	t.Logf("device: %+v", b.Info())
	return b
}

// TestParity runs the parity table on the Vulkan device and on the CPU
// backend with identical inputs and compares (select kernels with
// -run 'TestParity/softmax').
func TestParity(t *testing.T) {
	b := openParity(t)
	ref := cpu.New()
	defer ref.Close()
	paritytest.RunParity(t, b, ref)
}

// TestParityErrors checks that the Vulkan backend refuses every invalid call
// of the error table, including views of the CPU backend.
func TestParityErrors(t *testing.T) {
	b := openParity(t)
	other := cpu.New()
	defer other.Close()
	paritytest.RunErrors(t, b, other)
}
