package vk

import (
	"blip/gpu"
)

// binding is one storage buffer a dispatch reads or writes. Bindings are
// numbered 0..n-1 in the order given (set 0). The runtime binds the view's
// bytes starting at its offset rounded down to the device's storage-buffer
// offset alignment; elemOff gives the shader the remaining element offset,
// which kernels pass in their push constants.
type binding struct {
	v     gpu.View
	write bool
}

func rd(v gpu.View) binding { return binding{v: v} }
func wr(v gpu.View) binding { return binding{v: v, write: true} }

// dispatch is one vkCmdDispatch of a compute shader.
type dispatch struct {
	shader string   // shaders/<shader>.comp, embedded as SPIR-V
	spec   []uint32 // specialization constants, constant_id 0..len-1
	binds  []binding
	push   []uint32 // push constants, at most 128 bytes
	groups [3]uint32
}

// kernelFunc turns one checked call into dispatches. It may split a call into
// several dispatches so that no binding spans more than maxBind bytes.
type kernelFunc func(d *Device, c gpu.Call) ([]dispatch, error)

// kernels maps gpu.Call.Kernel() names to their dispatch builders; each
// gpu/vk/<kernel>.go file registers its entry in init.
var kernels = map[string]kernelFunc{}
