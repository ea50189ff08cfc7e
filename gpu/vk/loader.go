package vk

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

static void* blip_dlopen(const char* name) { return dlopen(name, RTLD_NOW | RTLD_LOCAL); }
static void* blip_dlsym(void* h, const char* name) { return dlsym(h, name); }
static const char* blip_dlerror(void) { return dlerror(); }

typedef void* (*blip_gipa_fn)(void*, const char*);
static void* blip_gipa(void* gipa, void* instance, const char* name) {
	return ((blip_gipa_fn)gipa)(instance, name);
}

// vkGetPhysicalDeviceProperties2 and vkGetPhysicalDeviceFeatures2 (and the
// memory-properties variant) share this shape: (VkPhysicalDevice, T*).
typedef void (*blip_pd2_fn)(void*, void*);
static void blip_call_pd2(void* fn, void* pd, void* out) { ((blip_pd2_fn)fn)(pd, out); }

// vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR: (VkPhysicalDevice,
// uint32_t*, VkCooperativeMatrixPropertiesKHR*) -> VkResult.
typedef int32_t (*blip_count_fn)(void*, uint32_t*, void*);
static int32_t blip_call_count(void* fn, void* pd, uint32_t* n, void* out) { return ((blip_count_fn)fn)(pd, n, out); }

// The calls made for every step build their structs here, on the C stack:
// vulkan-go's marshalling of struct arrays frees its C copies from a Go
// finalizer that can run while the driver is still reading them. The
// structs mirror the Vulkan ones member for member (LP64 layout).
#define ST_SUBMIT_INFO 4
#define ST_WRITE_DESCRIPTOR_SET 35
#define ST_MEMORY_BARRIER 46
#define DESCRIPTOR_STORAGE_BUFFER 7
typedef struct { uint32_t sType; const void* pNext; uint32_t src, dst; } blip_memory_barrier;
typedef void (*blip_barrier_fn)(void*, uint32_t, uint32_t, uint32_t, uint32_t, const void*, uint32_t, const void*, uint32_t, const void*);
static void blip_cmd_barrier(void* fn, void* cb, uint32_t srcStage, uint32_t dstStage, uint32_t srcAccess, uint32_t dstAccess) {
	blip_memory_barrier mb = {ST_MEMORY_BARRIER, 0, srcAccess, dstAccess};
	((blip_barrier_fn)fn)(cb, srcStage, dstStage, 0, 1, &mb, 0, 0, 0, 0);
}

typedef struct { uint64_t buffer, offset, range; } blip_buffer_info;
typedef struct {
	uint32_t sType; const void* pNext; uint64_t dstSet;
	uint32_t dstBinding, dstArrayElement, descriptorCount; int32_t descriptorType;
	const void* pImageInfo; const blip_buffer_info* pBufferInfo; const void* pTexelBufferView;
} blip_write_set;
typedef void (*blip_update_fn)(void*, uint32_t, const blip_write_set*, uint32_t, const void*);
// BLIP_MAX_BINDINGS is pipeline.go's maxBindings (checked where Go compiles).
#define BLIP_MAX_BINDINGS 10
static void blip_update_storage_set(void* fn, void* dev, uint64_t set, uint32_t n, const uint64_t* bufs, const uint64_t* offs, const uint64_t* ranges) {
	blip_buffer_info info[BLIP_MAX_BINDINGS];
	blip_write_set w[BLIP_MAX_BINDINGS];
	if (n > BLIP_MAX_BINDINGS) n = BLIP_MAX_BINDINGS;
	for (uint32_t i = 0; i < n; i++) {
		info[i].buffer = bufs[i]; info[i].offset = offs[i]; info[i].range = ranges[i];
		w[i].sType = ST_WRITE_DESCRIPTOR_SET;
		w[i].pNext = 0; w[i].dstSet = set; w[i].dstBinding = i; w[i].dstArrayElement = 0;
		w[i].descriptorCount = 1; w[i].descriptorType = DESCRIPTOR_STORAGE_BUFFER;
		w[i].pImageInfo = 0; w[i].pBufferInfo = &info[i]; w[i].pTexelBufferView = 0;
	}
	((blip_update_fn)fn)(dev, n, w, 0, 0);
}

// vkAllocateDescriptorSets for one set. (vulkan-go's marshalling also
// caches a struct's C copy in the Go value: an allocate info whose pool was
// changed for a retry still named the old, full pool.)
#define ST_DESCRIPTOR_SET_ALLOCATE_INFO 34
typedef struct { uint32_t sType; const void* pNext; uint64_t pool; uint32_t count; const uint64_t* layouts; } blip_set_alloc_info;
typedef int32_t (*blip_alloc_sets_fn)(void*, const blip_set_alloc_info*, uint64_t*);
static int32_t blip_allocate_set(void* fn, void* dev, uint64_t pool, uint64_t layout, uint64_t* set) {
	blip_set_alloc_info ai = {ST_DESCRIPTOR_SET_ALLOCATE_INFO, 0, pool, 1, &layout};
	return ((blip_alloc_sets_fn)fn)(dev, &ai, set);
}

typedef struct {
	uint32_t sType; const void* pNext; uint32_t waitSemaphoreCount; const void* pWaitSemaphores;
	const void* pWaitDstStageMask; uint32_t commandBufferCount; void* const* pCommandBuffers;
	uint32_t signalSemaphoreCount; const void* pSignalSemaphores;
} blip_submit_info;
typedef int32_t (*blip_submit_fn)(void*, uint32_t, const blip_submit_info*, uint64_t);
static int32_t blip_queue_submit(void* fn, void* queue, void* cb, uint64_t fence) {
	void* cbs[1] = {cb};
	blip_submit_info si = {ST_SUBMIT_INFO, 0, 0, 0, 0, 1, cbs, 0, 0};
	return ((blip_submit_fn)fn)(queue, 1, &si, fence);
}

typedef struct { uint64_t src, dst, size; } blip_buffer_copy;
typedef void (*blip_copy_fn)(void*, uint64_t, uint64_t, uint32_t, const blip_buffer_copy*);
static void blip_cmd_copy(void* fn, void* cb, uint64_t src, uint64_t dst, uint64_t srcOff, uint64_t dstOff, uint64_t size) {
	blip_buffer_copy r = {srcOff, dstOff, size};
	((blip_copy_fn)fn)(cb, src, dst, 1, &r);
}
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// The Vulkan loader is opened once per process. vulkan-go would dlopen the
// unversioned libvulkan.so, which only the -dev package provides, so blip
// opens the runtime's libvulkan.so.1 itself and hands its
// vkGetInstanceProcAddr to vulkan-go.
var (
	loadOnce sync.Once
	loadErr  error
	gipa     unsafe.Pointer
)

func load() error {
	loadOnce.Do(func() {
		var h unsafe.Pointer
		for _, name := range []string{"libvulkan.so.1", "libvulkan.so"} {
			cn := C.CString(name)
			h = C.blip_dlopen(cn)
			C.free(unsafe.Pointer(cn))
			if h != nil {
				break
			}
		}
		if h == nil {
			loadErr = fmt.Errorf("dlopen libvulkan.so.1: %s (install libvulkan1 and a driver, e.g. mesa-vulkan-drivers)", C.GoString(C.blip_dlerror()))
			return
		}
		cn := C.CString("vkGetInstanceProcAddr")
		gipa = C.blip_dlsym(h, cn)
		C.free(unsafe.Pointer(cn))
		if gipa == nil {
			loadErr = fmt.Errorf("dlsym vkGetInstanceProcAddr: not found in libvulkan.so.1")
			return
		}
		vk.SetGetInstanceProcAddr(gipa)
		if err := vk.Init(); err != nil {
			loadErr = fmt.Errorf("vulkan-go init: %w", err)
		}
	})
	return loadErr
}

// instanceProc returns an instance-level function pointer, or nil.
func instanceProc(inst vk.Instance, name string) unsafe.Pointer {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.blip_gipa(gipa, unsafe.Pointer(inst), cn)
}

// callPD2 calls a (VkPhysicalDevice, T*) function such as
// vkGetPhysicalDeviceProperties2 with out pointing at C memory.
func callPD2(fn unsafe.Pointer, pd vk.PhysicalDevice, out unsafe.Pointer) {
	C.blip_call_pd2(fn, unsafe.Pointer(pd), out)
}

// callCount calls a (VkPhysicalDevice, uint32_t*, T*) enumeration such as
// vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR; n and out are C memory.
func callCount(fn unsafe.Pointer, pd vk.PhysicalDevice, n, out unsafe.Pointer) vk.Result {
	return vk.Result(C.blip_call_count(fn, unsafe.Pointer(pd), (*C.uint32_t)(n), out))
}

// cAlloc returns zeroed C memory (for pNext chains, which must not live in Go
// memory).
func cAlloc(n int) unsafe.Pointer { return C.calloc(C.size_t(n), 1) }
func cFree(p unsafe.Pointer)      { C.free(p) }

// cWords views n uint32 words of C memory.
func cWords(p unsafe.Pointer, n int) []uint32 { return unsafe.Slice((*uint32)(p), n) }

// cstrs caches NUL-terminated copies of strings in C memory.
var cstrs sync.Map

// cstr returns s with a NUL terminator, backed by C memory that is never
// freed. vulkan-go stores a string's data pointer in its C structs as is; a
// Go string built by concatenation may live on the goroutine stack, which
// can move before the C call reads it (seen as a rare crash inside
// vkCreateComputePipelines reading the entry-point name).
func cstr(s string) string {
	if v, ok := cstrs.Load(s); ok {
		return v.(string)
	}
	p := C.CString(s)
	str := unsafe.String((*byte)(unsafe.Pointer(p)), len(s)+1)
	v, _ := cstrs.LoadOrStore(s, str)
	return v.(string)
}

// direct holds the Vulkan entry points blip calls without vulkan-go's
// marshalling (see the C comment above).
type direct struct {
	barrier, update, submit, copy, allocSet unsafe.Pointer
}

func loadDirect(inst vk.Instance) (direct, error) {
	d := direct{
		barrier:  instanceProc(inst, "vkCmdPipelineBarrier"),
		update:   instanceProc(inst, "vkUpdateDescriptorSets"),
		submit:   instanceProc(inst, "vkQueueSubmit"),
		copy:     instanceProc(inst, "vkCmdCopyBuffer"),
		allocSet: instanceProc(inst, "vkAllocateDescriptorSets"),
	}
	if d.barrier == nil || d.update == nil || d.submit == nil || d.copy == nil || d.allocSet == nil {
		return d, fmt.Errorf("vkGetInstanceProcAddr: core Vulkan 1.0 functions missing")
	}
	return d, nil
}

// h64 is the 64-bit value of a non-dispatchable Vulkan handle (a pointer
// type in vulkan-go on 64-bit systems).
func h64(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

func (f direct) cmdBarrier(cb vk.CommandBuffer, srcStage, dstStage vk.PipelineStageFlags, srcAccess, dstAccess vk.AccessFlags) {
	C.blip_cmd_barrier(f.barrier, unsafe.Pointer(cb), C.uint32_t(srcStage), C.uint32_t(dstStage), C.uint32_t(srcAccess), C.uint32_t(dstAccess))
}

// The C writer's capacity is maxBindings: either array length is negative
// (a compile error) when they differ.
var (
	_ [C.BLIP_MAX_BINDINGS - maxBindings]struct{}
	_ [maxBindings - C.BLIP_MAX_BINDINGS]struct{}
)

func (f direct) updateStorageSet(dev vk.Device, set uint64, bufs, offs, ranges []uint64) {
	C.blip_update_storage_set(f.update, unsafe.Pointer(dev), C.uint64_t(set), C.uint32_t(len(bufs)),
		(*C.uint64_t)(unsafe.Pointer(&bufs[0])), (*C.uint64_t)(unsafe.Pointer(&offs[0])), (*C.uint64_t)(unsafe.Pointer(&ranges[0])))
}

// allocateSet allocates one descriptor set of layout from pool.
func (f direct) allocateSet(dev vk.Device, pool vk.DescriptorPool, layout vk.DescriptorSetLayout) (vk.DescriptorSet, vk.Result) {
	// The handle is written straight into set (a pointer-sized handle
	// type holding no Go pointer), as vulkan-go's own out parameters are.
	var set vk.DescriptorSet
	r := C.blip_allocate_set(f.allocSet, unsafe.Pointer(dev), C.uint64_t(h64(unsafe.Pointer(pool))), C.uint64_t(h64(unsafe.Pointer(layout))),
		(*C.uint64_t)(unsafe.Pointer(&set)))
	return set, vk.Result(r)
}

func (f direct) queueSubmit(q vk.Queue, cb vk.CommandBuffer, fence uint64) vk.Result {
	return vk.Result(C.blip_queue_submit(f.submit, unsafe.Pointer(q), unsafe.Pointer(cb), C.uint64_t(fence)))
}

func (f direct) cmdCopy(cb vk.CommandBuffer, src, dst uint64, srcOff, dstOff, size int64) {
	C.blip_cmd_copy(f.copy, unsafe.Pointer(cb), C.uint64_t(src), C.uint64_t(dst), C.uint64_t(srcOff), C.uint64_t(dstOff), C.uint64_t(size))
}

// Calls that still go through vulkan-go's struct marshalling (creation of
// instances, devices, layouts, pools and pipelines: rare, but a pipeline
// compiles for seconds on lavapipe) run with the garbage collector held off,
// so no finalizer frees their C copies mid-call. Nested holders share one
// pause.
var (
	gcMu    sync.Mutex
	gcHolds int
	gcOld   int
)

func withoutGC(f func()) {
	gcMu.Lock()
	if gcHolds == 0 {
		gcOld = debug.SetGCPercent(-1)
	}
	gcHolds++
	gcMu.Unlock()
	defer func() {
		gcMu.Lock()
		gcHolds--
		if gcHolds == 0 {
			debug.SetGCPercent(gcOld)
		}
		gcMu.Unlock()
	}()
	f()
}
