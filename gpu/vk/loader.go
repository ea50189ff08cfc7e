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
*/
import "C"

import (
	"fmt"
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
