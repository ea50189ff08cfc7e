// Package vk is the Vulkan backend of blip: device selection, memory,
// pipelines and command recording, with one file per kernel (<kernel>.go)
// turning gpu calls into compute-shader dispatches.
package vk

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// Device is one opened Vulkan device: the gpu.Backend of this package.
type Device struct {
	mu   sync.Mutex
	inst *instance
	pd   vk.PhysicalDevice
	phys physInfo
	info gpu.DeviceInfo
	dev  vk.Device
	q    vk.Queue

	maxBind        int64     // maxStorageBufferRange, bytes
	bindAlign      int64     // minStorageBufferOffsetAlignment, bytes
	maxGroups      [3]uint32 // maxComputeWorkGroupCount
	maxInvocations int       // maxComputeWorkGroupInvocations
	maxBinds       int       // storage buffers a shader may bind: maxBindings, or fewer where the device allows fewer
	coopMode       coopMode  // tests: the tensor-core GEMM's block (gemm_coop.go)
	swRound        bool      // tests: the tensor-core shaders round in integers (rounding.go)

	// memory
	devType, hostType int
	devMapped         bool
	blockSize         int64
	blocks            []*block
	nextBlockID       uint64
	deferred          []*buffer // freed while work was pending
	scratch           *buffer   // kernels' partial results (attention_split.go)
	counters          *buffer   // kernels' counters of finished workgroups, zero between dispatches (attention_split.go)
	coop              string    // the cooperative-matrix GEMM shader in use, or "" (gemm_coop.go)
	cm2               *cm2Caps  // gemm_cm2 in use: what the device offers of it, or nil (gemm_cm2.go)
	cm2Force          cm2Tile   // tests: gemm_cm2's block, where set
	pinSubgroup       bool      // the tensor-core pipelines require their subgroup size (subgroups.go)
	rowsMode          rowsMode  // tests: gemm_rows.comp always or never (gemm_rows.go)
	splitTwoPass      bool      // tests: split attention's passes 0 and 1 in two dispatches (attention_split.go)
	peakUsed          int64
	staging           *block // host-visible bounce buffer for unmapped memory

	fn    direct // entry points called without vulkan-go's marshalling
	pipes pipelines
	desc  descriptors
	rec   recorder
	prof  profiler

	closed bool
}

// elemOff is the element offset of v within its binding: bindings start at
// v's byte offset rounded down to bindAlign.
func (d *Device) elemOff(v gpu.View) uint32 {
	return uint32((v.ByteOff() % d.bindAlign) / v.DType.Size())
}

// Name implements gpu.Backend.
func (d *Device) Name() string { return fmt.Sprintf("vulkan:%d", d.info.Index) }

// Info implements gpu.Backend.
func (d *Device) Info() gpu.DeviceInfo { return d.info }

func init() {
	gpu.Register(gpu.Driver{Name: "vulkan", Devices: listDevices, Open: open})
}

func listDevices(o gpu.Options) ([]gpu.DeviceInfo, error) {
	var out []gpu.DeviceInfo
	var err error
	withoutGC(func() {
		var in *instance
		if in, err = newInstance(false); err != nil {
			return
		}
		defer in.destroy()
		for i := range in.physical {
			out = append(out, in.describe(i).info)
		}
	})
	return out, err
}

// open creates a Device for physical device idx, or the best one if idx < 0.
func open(o gpu.Options, idx int) (gpu.Backend, error) {
	var in *instance
	var err error
	var infos []physInfo
	var list []gpu.DeviceInfo
	withoutGC(func() {
		if in, err = newInstance(o.Validate); err != nil {
			return
		}
		infos = make([]physInfo, len(in.physical))
		for i := range in.physical {
			infos[i] = in.describe(i)
			list = append(list, infos[i].info)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", gpu.ErrNoDevice, err)
	}
	if len(in.physical) == 0 {
		in.destroy()
		return nil, fmt.Errorf("%w: vkEnumeratePhysicalDevices found no Vulkan device", gpu.ErrNoDevice)
	}
	if idx < 0 {
		idx = gpu.PickBest(list)
	} else if idx >= len(list) {
		in.destroy()
		return nil, fmt.Errorf("vulkan: device %d does not exist (%d devices; see `blip devices`)", idx, len(list))
	}
	d, err := newDevice(in, idx, infos[idx])
	if err != nil {
		in.destroy()
		return nil, err
	}
	return d, nil
}

func newDevice(in *instance, idx int, pi physInfo) (*Device, error) {
	d := &Device{inst: in, pd: in.physical[idx], phys: pi, info: pi.info}
	// vulkan-go stores this slice's data pointer in C memory as is, so it
	// must not be Go memory (cgo pointer rules).
	prioMem := cAlloc(4)
	defer cFree(prioMem)
	prio := unsafe.Slice((*float32)(prioMem), 1)
	prio[0] = 1
	qi := []vk.DeviceQueueCreateInfo{{
		SType:            vk.StructureTypeDeviceQueueCreateInfo,
		QueueFamilyIndex: pi.queueFamily,
		QueueCount:       1,
		PQueuePriorities: prio,
	}}
	dropCM2 := func() {} // takes gemm_cm2's feature and extension back out of ci
	ci := vk.DeviceCreateInfo{
		SType:                vk.StructureTypeDeviceCreateInfo,
		QueueCreateInfoCount: 1,
		PQueueCreateInfos:    qi,
	}
	// F16/BF16 views need 16-bit storage buffers (core in 1.1, a feature
	// to enable).
	if pi.info.Storage16 {
		s16 := cAlloc(sizeSmallFeatures)
		defer cFree(s16)
		put32(s16, 0, stStorage16)
		put32(s16, 16, 1) // storageBuffer16BitAccess
		ci.PNext = s16
		if shader, ext, st := coopChoice(pi); shader != "" {
			// gemm_coop: cooperative matrices, f16 arithmetic, the
			// Vulkan memory model, the rounding-mode execution mode.
			f16, vmm, coop := cAlloc(sizeSmallFeatures), cAlloc(sizeSmallFeatures), cAlloc(sizeSmallFeatures)
			defer cFree(f16)
			defer cFree(vmm)
			defer cFree(coop)
			put32(f16, 0, stFloat16Int8)
			put32(f16, 16, 1) // shaderFloat16
			put32(vmm, 0, stMemoryModel)
			put32(vmm, 16, 1) // vulkanMemoryModel
			put32(coop, 0, st)
			put32(coop, 16, 1) // cooperativeMatrix
			putPtr(s16, 8, f16)
			putPtr(f16, 8, vmm)
			putPtr(vmm, 8, coop)
			exts := []string{cstr(ext), cstr("VK_KHR_vulkan_memory_model"), cstr("VK_KHR_shader_float16_int8")}
			if pi.rte16 {
				exts = append(exts, cstr("VK_KHR_shader_float_controls")) // RoundingModeRTE (rounding.go)
			}
			if pi.pinSubgroup {
				// The tensor-core shaders' subgroup layout (subgroups.go).
				sz := cAlloc(sizeSmallFeatures)
				defer cFree(sz)
				put32(sz, 0, stSGSizeFeatures)
				put32(sz, 16, 1) // subgroupSizeControl
				put32(sz, 20, 1) // computeFullSubgroups
				putPtr(coop, 8, sz)
				exts = append(exts, cstr("VK_EXT_subgroup_size_control"))
				d.pinSubgroup = true
			}
			// cm2Link is where gemm_cm2's features join the chain: its end.
			cm2Link := coop
			for p := *(*unsafe.Pointer)(unsafe.Add(coop, 8)); p != nil; p = *(*unsafe.Pointer)(unsafe.Add(p, 8)) {
				cm2Link = p
			}
			ci.EnabledExtensionCount = uint32(len(exts))
			ci.PpEnabledExtensionNames = exts
			d.coop = shader
			if useCM2(pi) {
				cm2 := cAlloc(sizeCoop2Features)
				defer cFree(cm2)
				put32(cm2, 0, stCoop2Features)
				for _, o := range cm2FeatureOffsets {
					put32(cm2, o, 1)
				}
				putPtr(cm2Link, 8, cm2)
				d.cm2 = pi.cm2
				withCM2 := append(exts[:len(exts):len(exts)], cstr("VK_NV_cooperative_matrix2"))
				ci.EnabledExtensionCount = uint32(len(withCM2))
				ci.PpEnabledExtensionNames = withCM2
				dropCM2 = func() {
					putPtr(cm2Link, 8, nil)
					ci.EnabledExtensionCount = uint32(len(exts))
					ci.PpEnabledExtensionNames = exts
				}
			}
		}
	}
	var dev vk.Device
	var r vk.Result
	withoutGC(func() { r = vk.CreateDevice(d.pd, &ci, nil, &dev) })
	if r != vk.Success && d.cm2 != nil {
		fmt.Fprintf(os.Stderr, "blip: %s: vkCreateDevice with cooperative matrix 2 failed (%d); continuing without it\n", pi.info.Name, r)
		d.cm2 = nil
		d.info.CoopGemm = coopNames[d.coop]
		dropCM2()
		withoutGC(func() { r = vk.CreateDevice(d.pd, &ci, nil, &dev) })
	}
	if r != vk.Success && d.coop != "" {
		// A driver that lists the features but refuses them: go on
		// without the tensor-core GEMM.
		fmt.Fprintf(os.Stderr, "blip: %s: vkCreateDevice with cooperative matrices failed (%d); continuing without them\n", pi.info.Name, r)
		d.coop, d.info.CoopGemm, d.pinSubgroup = "", "", false
		ci.EnabledExtensionCount, ci.PpEnabledExtensionNames = 0, nil
		putPtr(ci.PNext, 8, nil) // the 16-bit storage features alone
		withoutGC(func() { r = vk.CreateDevice(d.pd, &ci, nil, &dev) })
	}
	if err := check("vkCreateDevice", r); err != nil {
		return nil, err
	}
	d.dev = dev
	fn, err := loadDirect(in.h)
	if err != nil {
		vk.DestroyDevice(dev, nil)
		return nil, err
	}
	d.fn = fn
	var q vk.Queue
	vk.GetDeviceQueue(d.dev, pi.queueFamily, 0, &q)
	d.q = q
	d.maxBind = int64(pi.limits.MaxStorageBufferRange)
	d.bindAlign = int64(pi.limits.MinStorageBufferOffsetAlignment)
	if d.bindAlign < 4 {
		d.bindAlign = 4
	}
	d.maxGroups = pi.limits.MaxComputeWorkGroupCount
	d.maxInvocations = int(pi.limits.MaxComputeWorkGroupInvocations)
	d.maxBinds = int(min(uint32(maxBindings), pi.limits.MaxPerStageDescriptorStorageBuffers, pi.limits.MaxPerStageResources))
	if d.maxBinds < minBindings {
		vk.DestroyDevice(d.dev, nil)
		return nil, fmt.Errorf("vulkan: %s allows %d storage buffers per shader stage; blip's kernels need %d", pi.info.Name, d.maxBinds, minBindings)
	}
	if err := d.pickMemoryTypes(); err != nil {
		vk.DestroyDevice(d.dev, nil)
		return nil, err
	}
	if err := d.pipes.init(d); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.desc.init(d); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.rec.init(d); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.inst.takeMessages(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close implements gpu.Backend: waits for work, releases everything, and
// reports validation messages collected since the last Sync.
func (d *Device) Close() error {
	if d.closed {
		return nil
	}
	var err error
	if d.rec.pool != vk.NullCommandPool {
		err = d.Sync()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.dev != nil {
		vk.DeviceWaitIdle(d.dev)
		d.rec.destroy(d)
		d.prof.destroy(d)
		d.desc.destroy(d)
		d.pipes.destroy(d)
		for _, b := range d.blocks {
			d.destroyBlock(b)
		}
		d.blocks = nil
		if d.staging != nil {
			d.destroyBlock(d.staging)
		}
		vk.DestroyDevice(d.dev, nil)
		d.dev = nil
	}
	if e := d.inst.takeMessages(); e != nil && err == nil {
		err = e
	}
	d.inst.destroy()
	return err
}
