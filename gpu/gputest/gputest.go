// Package gputest opens backends for tests of the packages above gpu.
package gputest

import (
	"os"
	"testing"

	"blip/gpu"
	_ "blip/gpu/cpu" // registers the "cpu" backend
	_ "blip/gpu/vk"  // registers the "vulkan" backend
)

// Vulkan opens the best Vulkan device (lavapipe on a machine without a GPU),
// with the validation layer under BLIP_VALIDATE=1, and closes it when the
// test ends (a validation message then fails the test). Without a device
// the test is skipped, unless BLIP_REQUIRE_VULKAN=1 (make test, CI) makes
// that a failure.
func Vulkan(t testing.TB) gpu.Backend {
	t.Helper()
	be, err := gpu.Open(gpu.Options{Backend: "vulkan", Device: -1, Validate: os.Getenv("BLIP_VALIDATE") == "1"})
	if err != nil {
		if os.Getenv("BLIP_REQUIRE_VULKAN") == "1" {
			t.Fatalf("BLIP_REQUIRE_VULKAN=1 but no Vulkan device: %v", err)
		}
		t.Skipf("no Vulkan device: %v", err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("close %s: %v", be.Name(), err)
		}
	})
	t.Logf("device: %s (%s)", be.Info().Name, be.Name())
	return be
}
