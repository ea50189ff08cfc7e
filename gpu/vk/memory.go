package vk

import (
	"fmt"
	"sort"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// Device memory is taken from the driver in large blocks, each with one
// VkBuffer spanning it; tensors are sub-ranges. This keeps the number of
// allocations (which drivers cap, e.g. 4096) small and lets one descriptor
// binding address any tensor in a block.

const (
	allocAlign   = 256              // byte alignment of every sub-allocation
	defaultBlock = int64(256) << 20 // bytes per block unless the heap is small
	maxAlloc     = int64(1) << 40   // refuse anything larger outright
	hostMemFlags = vk.MemoryPropertyHostVisibleBit | vk.MemoryPropertyHostCoherentBit
)

type span struct{ off, size int64 }

type block struct {
	id     uint64
	buf    vk.Buffer
	mem    vk.DeviceMemory
	size   int64
	mapped unsafe.Pointer // non-nil when host-visible
	// cached: the mapping is host-cached, so the CPU reads it at memory
	// speed. A discrete GPU's device-local memory mapped through the PCIe
	// BAR is not: each CPU read is an uncached bus transaction (tens of
	// MB/s), so Read copies such blocks through the staging block.
	cached bool
	free   []span // sorted by offset, coalesced
	used   int64
}

// buffer is a sub-allocation: the gpu.Buffer of this backend.
type buffer struct {
	dev   *Device
	blk   *block
	off   int64
	size  int64 // requested bytes
	alloc int64 // bytes taken from the block
	freed bool
}

func (b *buffer) Bytes() int64       { return b.size }
func (b *buffer) Owner() gpu.Backend { return b.dev }

// memoryType picks the memory type for tensors: device-local, and also
// host-visible+coherent when the device offers that for its whole heap (CPU
// and integrated devices), so transfers become plain copies.
func (d *Device) pickMemoryTypes() error {
	mem := d.phys.mem
	d.devType, d.hostType = -1, -1
	for i := uint32(0); i < mem.MemoryTypeCount; i++ {
		f := vk.MemoryPropertyFlagBits(mem.MemoryTypes[i].PropertyFlags)
		if f&vk.MemoryPropertyDeviceLocalBit != 0 && d.devType < 0 {
			d.devType = int(i)
		}
		if f&hostMemFlags == hostMemFlags && d.hostType < 0 {
			d.hostType = int(i)
		}
	}
	// Staging prefers host-cached memory: Read copies out of it with the
	// CPU, which is slow from uncached (write-combined) memory.
	for i := uint32(0); i < mem.MemoryTypeCount; i++ {
		f := vk.MemoryPropertyFlagBits(mem.MemoryTypes[i].PropertyFlags)
		if f&hostMemFlags == hostMemFlags && f&vk.MemoryPropertyHostCachedBit != 0 {
			d.hostType = int(i)
			break
		}
	}
	if d.devType < 0 {
		d.devType = d.hostType
	}
	if d.devType < 0 {
		return fmt.Errorf("vkGetPhysicalDeviceMemoryProperties: no usable memory type")
	}
	// Prefer a type that is both, if its heap is the big device-local one.
	for i := uint32(0); i < mem.MemoryTypeCount; i++ {
		f := vk.MemoryPropertyFlagBits(mem.MemoryTypes[i].PropertyFlags)
		want := vk.MemoryPropertyDeviceLocalBit | hostMemFlags
		if f&want == want {
			h := mem.MemoryHeaps[mem.MemoryTypes[i].HeapIndex]
			if int64(h.Size) >= d.info.MemoryBytes {
				d.devType = int(i)
				break
			}
		}
	}
	f := vk.MemoryPropertyFlagBits(mem.MemoryTypes[d.devType].PropertyFlags)
	d.devMapped = f&hostMemFlags == hostMemFlags
	d.blockSize = defaultBlock
	if heap := int64(mem.MemoryHeaps[mem.MemoryTypes[d.devType].HeapIndex].Size); heap/8 < d.blockSize {
		d.blockSize = max(heap/8, 16<<20)
	}
	return nil
}

func (d *Device) newBlock(size int64, memType int, usage vk.BufferUsageFlagBits) (*block, error) {
	bi := vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(size),
		Usage:       vk.BufferUsageFlags(usage),
		SharingMode: vk.SharingModeExclusive,
	}
	heap := d.phys.mem.MemoryHeaps[d.phys.mem.MemoryTypes[memType].HeapIndex]
	if size > int64(heap.Size) {
		return nil, d.oomError(size, memType)
	}
	var buf vk.Buffer
	if r := vk.CreateBuffer(d.dev, &bi, nil, &buf); r != vk.Success {
		if r == vk.ErrorOutOfDeviceMemory || r == vk.ErrorOutOfHostMemory {
			return nil, d.oomError(size, memType)
		}
		return nil, check("vkCreateBuffer", r)
	}
	var req vk.MemoryRequirements
	vk.GetBufferMemoryRequirements(d.dev, buf, &req)
	req.Deref()
	if req.MemoryTypeBits&(1<<uint(memType)) == 0 {
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, fmt.Errorf("vkGetBufferMemoryRequirements: memory type %d not allowed for storage buffers", memType)
	}
	ai := vk.MemoryAllocateInfo{
		SType:           vk.StructureTypeMemoryAllocateInfo,
		AllocationSize:  req.Size,
		MemoryTypeIndex: uint32(memType),
	}
	var mem vk.DeviceMemory
	if r := vk.AllocateMemory(d.dev, &ai, nil, &mem); r != vk.Success {
		vk.DestroyBuffer(d.dev, buf, nil)
		if r == vk.ErrorOutOfDeviceMemory || r == vk.ErrorOutOfHostMemory {
			return nil, d.oomError(size, memType)
		}
		return nil, check("vkAllocateMemory", r)
	}
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(d.dev, buf, mem, 0)); err != nil {
		vk.FreeMemory(d.dev, mem, nil)
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, err
	}
	b := &block{buf: buf, mem: mem, size: size, free: []span{{0, size}}}
	f := vk.MemoryPropertyFlagBits(d.phys.mem.MemoryTypes[memType].PropertyFlags)
	if f&hostMemFlags == hostMemFlags {
		var p unsafe.Pointer
		if err := check("vkMapMemory", vk.MapMemory(d.dev, mem, 0, vk.DeviceSize(size), 0, &p)); err != nil {
			vk.FreeMemory(d.dev, mem, nil)
			vk.DestroyBuffer(d.dev, buf, nil)
			return nil, err
		}
		b.mapped = p
		b.cached = f&vk.MemoryPropertyHostCachedBit != 0
	}
	d.nextBlockID++
	b.id = d.nextBlockID
	return b, nil
}

func (d *Device) destroyBlock(b *block) {
	if b.mapped != nil {
		vk.UnmapMemory(d.dev, b.mem)
	}
	vk.DestroyBuffer(d.dev, b.buf, nil)
	vk.FreeMemory(d.dev, b.mem, nil)
	d.dropDescriptors(b.id)
}

func (d *Device) oomError(asked int64, memType int) error {
	heap := d.phys.mem.MemoryTypes[memType].HeapIndex
	free := d.inst.heapFree(d.pd, d.phys.exts, heap)
	var used int64
	for _, b := range d.blocks {
		used += b.used
	}
	if free >= 0 {
		return fmt.Errorf("vkAllocateMemory: out of device memory: asked for %s, %s free on the heap (blip holds %s in %d blocks)", human(asked), human(free), human(used), len(d.blocks))
	}
	return fmt.Errorf("vkAllocateMemory: out of device memory: asked for %s, heap is %s (blip holds %s in %d blocks)", human(asked), human(int64(d.phys.mem.MemoryHeaps[heap].Size)), human(used), len(d.blocks))
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// take finds n bytes in b (first fit), or returns -1.
func (b *block) take(n int64) int64 {
	for i, s := range b.free {
		if s.size >= n {
			off := s.off
			if s.size == n {
				b.free = append(b.free[:i], b.free[i+1:]...)
			} else {
				b.free[i] = span{s.off + n, s.size - n}
			}
			b.used += n
			return off
		}
	}
	return -1
}

// give returns [off, off+n) to b, coalescing neighbours.
func (b *block) give(off, n int64) {
	i := sort.Search(len(b.free), func(i int) bool { return b.free[i].off > off })
	b.free = append(b.free, span{})
	copy(b.free[i+1:], b.free[i:])
	b.free[i] = span{off, n}
	if i+1 < len(b.free) && b.free[i].off+b.free[i].size == b.free[i+1].off {
		b.free[i].size += b.free[i+1].size
		b.free = append(b.free[:i+1], b.free[i+2:]...)
	}
	if i > 0 && b.free[i-1].off+b.free[i-1].size == b.free[i].off {
		b.free[i-1].size += b.free[i].size
		b.free = append(b.free[:i], b.free[i+1:]...)
	}
	b.used -= n
}

const storageUsage = vk.BufferUsageStorageBufferBit | vk.BufferUsageTransferSrcBit | vk.BufferUsageTransferDstBit

// Alloc implements gpu.Backend.
func (d *Device) Alloc(n int64) (gpu.Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.alloc(n, true)
}

// alloc is Alloc with d.mu held; zero false leaves the contents undefined
// (scratch that is written before it is read).
func (d *Device) alloc(n int64, zero bool) (*buffer, error) {
	if n <= 0 || n > maxAlloc {
		return nil, fmt.Errorf("vulkan alloc: %d bytes is not a valid size", n)
	}
	a := (n + allocAlign - 1) / allocAlign * allocAlign
	var blk *block
	off := int64(-1)
	for _, b := range d.blocks {
		if off = b.take(a); off >= 0 {
			blk = b
			break
		}
	}
	if blk == nil {
		size := max(d.blockSize, a)
		b, err := d.newBlock(size, d.devType, storageUsage)
		if err != nil {
			return nil, err
		}
		d.blocks = append(d.blocks, b)
		blk, off = b, b.take(a)
	}
	buf := &buffer{dev: d, blk: blk, off: off, size: n, alloc: a}
	var used int64
	for _, b := range d.blocks {
		used += b.used
	}
	d.peakUsed = max(d.peakUsed, used)
	// Zero-fill: memory may be reused from freed tensors.
	if !zero {
		return buf, nil
	}
	if blk.mapped != nil && !d.pendingWork() {
		clear(unsafe.Slice((*byte)(unsafe.Add(blk.mapped, off)), a))
	} else if err := d.fill(buf, 0, a, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// Free implements gpu.Backend. Memory still used by recorded work returns to
// the pool only after the next Sync.
func (d *Device) Free(gb gpu.Buffer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := gb.(*buffer)
	if !ok || b.dev != d || b.freed {
		return
	}
	d.free(b)
}

// free is Free with d.mu held.
func (d *Device) free(b *buffer) {
	b.freed = true
	if d.pendingWork() {
		d.deferred = append(d.deferred, b)
		return
	}
	d.release(b)
}

func (d *Device) release(b *buffer) {
	b.blk.give(b.off, b.alloc)
	if b.blk.used == 0 && len(d.blocks) > 1 && b.blk.size > d.blockSize {
		// Dedicated oversized blocks go back to the driver at once.
		for i, x := range d.blocks {
			if x == b.blk {
				d.blocks = append(d.blocks[:i], d.blocks[i+1:]...)
				break
			}
		}
		d.destroyBlock(b.blk)
	}
}

// MemoryStats reports bytes held in blocks and bytes in use by tensors, and
// the peak of the latter since the device was opened.
func (d *Device) MemoryStats() (held, used, peak int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.blocks {
		held += b.size
		used += b.used
	}
	if used > d.peakUsed {
		d.peakUsed = used
	}
	return held, used, d.peakUsed
}
