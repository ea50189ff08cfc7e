// Package gpu defines the compute layer every other blip package runs on: typed
// views into device buffers, the kernel calls (one Go struct per kernel, see
// calls.go) and the Backend interface that executes them.
//
// Two backends implement it: gpu/vk (Vulkan compute shaders) and gpu/cpu (a
// pure-Go reference that every shader is tested against). Backends register
// themselves with Register; callers pick one with Open.
package gpu

import (
	"fmt"
)

// DType is the element type of a View.
type DType uint8

// Element types. F16 and BF16 are storage types; arithmetic is fp32.
const (
	F32 DType = iota
	I32
	F16
	BF16
)

// Size is the size of one element in bytes.
func (d DType) Size() int64 {
	switch d {
	case F16, BF16:
		return 2
	default:
		return 4
	}
}

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case I32:
		return "i32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Buffer is a block of device memory owned by one Backend. Buffers are
// created with Backend.Alloc and released with Backend.Free.
type Buffer interface {
	// Bytes is the usable size in bytes.
	Bytes() int64
	// Owner is the backend that allocated the buffer.
	Owner() Backend
}

// View is a typed window of Len elements starting Off elements into Buf.
// Kernels address views, never raw buffers, so that one allocation can hold
// many tensors (a parameter arena, a KV cache) without copies.
type View struct {
	Buf   Buffer
	Off   int64 // in elements of DType
	Len   int64 // in elements of DType
	DType DType
}

// Valid reports whether v refers to memory.
func (v View) Valid() bool { return v.Buf != nil }

// ByteOff is the byte offset of the first element.
func (v View) ByteOff() int64 { return v.Off * v.DType.Size() }

// Bytes is the size of the window in bytes.
func (v View) Bytes() int64 { return v.Len * v.DType.Size() }

// Overlaps reports whether v and w share bytes of one buffer.
func (v View) Overlaps(w View) bool {
	return v.Buf != nil && v.Buf == w.Buf && v.ByteOff() < w.ByteOff()+w.Bytes() && w.ByteOff() < v.ByteOff()+v.Bytes()
}

// Slice returns the sub-view of n elements starting at element off of v.
func (v View) Slice(off, n int64) View {
	if off < 0 || n < 0 || off+n > v.Len {
		panic(fmt.Sprintf("gpu: slice [%d:%d] of a view of %d elements", off, off+n, v.Len))
	}
	return View{Buf: v.Buf, Off: v.Off + off, Len: n, DType: v.DType}
}

func (v View) String() string {
	if v.Buf == nil {
		return "<nil view>"
	}
	return fmt.Sprintf("%s[%d]@%d", v.DType, v.Len, v.Off)
}

// Whole returns a view of all of b as elements of type d.
func Whole(b Buffer, d DType) View {
	return View{Buf: b, Off: 0, Len: b.Bytes() / d.Size(), DType: d}
}

// DeviceType orders devices for automatic selection.
type DeviceType int

// Device types, best first.
const (
	Discrete DeviceType = iota
	Integrated
	Virtual
	CPU
	Other
)

func (t DeviceType) String() string {
	switch t {
	case Discrete:
		return "discrete"
	case Integrated:
		return "integrated"
	case Virtual:
		return "virtual"
	case CPU:
		return "cpu"
	}
	return "other"
}

// DeviceInfo describes the device a backend runs on; `blip devices` prints it.
type DeviceInfo struct {
	Index          int    // position in the backend's device list
	Name           string // as the driver reports it
	Backend        string // "vulkan" or "cpu"
	Type           DeviceType
	Driver         string // driver name and version, where known
	APIVersion     string
	MemoryBytes    int64 // device-local heap size
	SubgroupSize   int
	ComputeUnits   int   // SMs or CUs the driver reports (workgroups that fill the device); 0: unknown
	SharedMemBytes int   // max shared memory per workgroup
	MaxBindBytes   int64 // max bytes one storage-buffer binding may span
	FP16           bool  // 16-bit storage and arithmetic
	Storage16      bool  // 16-bit storage buffers (F16/BF16 views in shaders)
	BF16           bool
	CoopMatKHR     bool // VK_KHR_cooperative_matrix
	CoopMatNV      bool // VK_NV_cooperative_matrix
	CoopMat2NV     bool // VK_NV_cooperative_matrix2
	// CoopGemm is the cooperative-matrix GEMM that half-precision
	// products (Gemm.F16, under fp16 weights) run on ("KHR 16x16x16",
	// "KHR 8x8x8", "NV 16x16x16"), or "" where the tiled shaders run them.
	CoopGemm   string
	Timestamps bool // GPU timestamps usable for profiling
}

// Backend executes kernel calls on one device.
//
// Calls are recorded in order by Do and may run asynchronously; Sync waits for
// all of them. Write and Read are ordered with respect to recorded calls: a
// Write is seen by calls recorded after it, and a Read sees the results of
// every call recorded before it.
type Backend interface {
	// Name is a short identifier such as "vulkan:0" or "cpu".
	Name() string
	Info() DeviceInfo
	// Alloc returns a zero-filled buffer of at least n bytes. Running out of
	// memory is an error that says how much was asked for and is free.
	Alloc(n int64) (Buffer, error)
	Free(b Buffer)
	// Write copies src into b starting at byte off.
	Write(b Buffer, off int64, src []byte) error
	// Read copies len(dst) bytes from b starting at byte off.
	Read(b Buffer, off int64, dst []byte) error
	// Do records calls. Each call is checked first (Call.Check) and an
	// invalid call is an error naming the kernel and its shapes; nothing of
	// that Do is recorded then.
	Do(calls ...Call) error
	// Sync submits recorded work and waits for it to finish.
	Sync() error
	Close() error
}

// Capturer is implemented by backends that can record a fixed list of calls
// once and replay it: a compiled forward pass run every step or every
// decoded token then costs the host one command instead of one per kernel.
type Capturer interface {
	// Capture checks calls (as Do does) and records them for replay. The
	// views are bound as they are now; their contents are read when a
	// replay runs.
	Capture(calls ...Call) (Replay, error)
}

// Replay is a captured call list.
type Replay interface {
	// Record records the captured calls again, as Do(calls...) would.
	Record() error
	// Free releases the capture; Record must not be called after it.
	Free()
}

// Call is one kernel invocation: a struct from calls.go. Check validates
// shapes, dtypes and view sizes without touching device memory.
type Call interface {
	Kernel() string
	Check() error
}

// Profiler is implemented by backends that can time kernels on the device.
type Profiler interface {
	// SetProfiling turns per-kernel timing on or off.
	SetProfiling(on bool)
	// Profile returns the time spent per kernel name since the last call
	// (after a Sync), in nanoseconds, and resets the counters. Vulkan names
	// a kernel that has several shaders kernel/shader (gemm/gemm_coop_khr).
	Profile() map[string]KernelTime
}

// KernelTime is the accumulated device time of one kernel.
type KernelTime struct {
	Calls int
	Nanos float64
}
