package vk

import (
	"blip/gpu"
)

// Device is one opened Vulkan device: the gpu.Backend of this package.
type Device struct {
	info      gpu.DeviceInfo
	maxBind   int64     // maxStorageBufferRange, bytes
	bindAlign int64     // minStorageBufferOffsetAlignment, bytes
	maxGroups [3]uint32 // maxComputeWorkGroupCount
}

// elemOff is the element offset of v within its binding: bindings start at
// v's byte offset rounded down to bindAlign.
func (d *Device) elemOff(v gpu.View) uint32 {
	return uint32((v.ByteOff() % d.bindAlign) / v.DType.Size())
}
