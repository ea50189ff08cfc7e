package vk

import (
	"testing"

	"blip/gpu"
)

// Every kernel of the contract must have a Vulkan dispatch (its CPU twin and
// parity cases are enforced by gpu/paritytest's coverage test and by running
// the whole table on the CPU backend).
func TestEveryKernelHasDispatch(t *testing.T) {
	for _, k := range gpu.KernelNames {
		if kernels[k] == nil {
			t.Errorf("kernel %q has no Vulkan dispatch (gpu/vk/%s.go)", k, k)
		}
	}
	for k := range kernels {
		found := false
		for _, n := range gpu.KernelNames {
			found = found || n == k
		}
		if !found {
			t.Errorf("Vulkan dispatch %q is not a kernel in gpu.KernelNames", k)
		}
	}
}
