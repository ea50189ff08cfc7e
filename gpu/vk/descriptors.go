package vk

import (
	"fmt"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Descriptor sets are cached by what they bind, so a forward pass replayed
// every step (or every decode token) reuses its sets instead of writing new
// ones.

// Sets come from pools of setsPerPool sets, filled one after another: blip
// counts what it takes from each, since drivers differ in what they do
// past a pool's size (lavapipe grows it; NVIDIA's returns
// VK_ERROR_OUT_OF_POOL_MEMORY). A reset empties every pool and starts
// again from the first, so the pools made are reused, not leaked.
const (
	setsPerPool   = 1024
	maxCachedSets = 32768
)

type bindKey struct {
	blk      uint64
	off, rng int64
}

type descKey struct {
	n int
	b [maxBindings]bindKey
}

type descriptors struct {
	pools     []vk.DescriptorPool
	perPool   int // sets per pool: setsPerPool (smaller in tests)
	cur, used int // the pool sets come from, and how many it gave
	allocated int // sets allocated since the last reset
	cache     map[descKey]vk.DescriptorSet
	gen       uint64 // counts trims: sets from an older generation are gone
}

func (ds *descriptors) init(d *Device) error {
	ds.cache = map[descKey]vk.DescriptorSet{}
	if ds.perPool == 0 {
		ds.perPool = setsPerPool
	}
	return ds.addPool(d)
}

func (ds *descriptors) addPool(d *Device) error {
	ci := vk.DescriptorPoolCreateInfo{
		SType:         vk.StructureTypeDescriptorPoolCreateInfo,
		MaxSets:       uint32(ds.perPool),
		PoolSizeCount: 1,
		PPoolSizes:    []vk.DescriptorPoolSize{{Type: vk.DescriptorTypeStorageBuffer, DescriptorCount: uint32(ds.perPool * maxBindings)}},
	}
	var p vk.DescriptorPool
	var r vk.Result
	withoutGC(func() { r = vk.CreateDescriptorPool(d.dev, &ci, nil, &p) })
	if err := check("vkCreateDescriptorPool", r); err != nil {
		return err
	}
	ds.pools = append(ds.pools, p)
	return nil
}

// next moves allocation to the following pool, making it if needed.
func (ds *descriptors) next(d *Device) error {
	ds.cur, ds.used = ds.cur+1, 0
	if ds.cur < len(ds.pools) {
		return nil
	}
	return ds.addPool(d)
}

// set returns a descriptor set binding the given ranges to bindings 0..n-1.
func (ds *descriptors) set(d *Device, key descKey, bufs []vk.Buffer) (vk.DescriptorSet, error) {
	if s, ok := ds.cache[key]; ok {
		return s, nil
	}
	if key.n < 1 || key.n > maxBindings {
		return nil, fmt.Errorf("vk: descriptor set of %d bindings (1..%d)", key.n, maxBindings)
	}
	if ds.used == ds.perPool {
		if err := ds.next(d); err != nil {
			return nil, err
		}
	}
	layout := d.pipes.setLayouts[key.n]
	s, r := d.fn.allocateSet(d.dev, ds.pools[ds.cur], layout)
	if r == vk.ErrorOutOfPoolMemory || r == vk.ErrorFragmentedPool {
		// Not expected with the counting above; a driver may still
		// refuse early, and the next pool is empty.
		if err := ds.next(d); err != nil {
			return nil, err
		}
		s, r = d.fn.allocateSet(d.dev, ds.pools[ds.cur], layout)
	}
	if err := check("vkAllocateDescriptorSets", r); err != nil {
		return nil, fmt.Errorf("%w (pool %d of %d, %d sets allocated)", err, ds.cur+1, len(ds.pools), ds.allocated)
	}
	ds.used++
	ds.allocated++
	hs, offs, rngs := make([]uint64, key.n), make([]uint64, key.n), make([]uint64, key.n)
	for i := 0; i < key.n; i++ {
		hs[i], offs[i], rngs[i] = h64(unsafe.Pointer(bufs[i])), uint64(key.b[i].off), uint64(key.b[i].rng)
	}
	d.fn.updateStorageSet(d.dev, h64(unsafe.Pointer(s)), hs, offs, rngs)
	ds.cache[key] = s
	return s, nil
}

// trim resets the pools when too many sets were allocated since the last
// reset (counting those of freed buffers, which dropDescriptors forgets but
// cannot free). Only call it when no recorded work is pending.
func (ds *descriptors) trim(d *Device) {
	if ds.allocated < maxCachedSets {
		return
	}
	ds.reset(d)
}

// reset frees every set. Only call it when no recorded work is pending.
func (ds *descriptors) reset(d *Device) {
	for _, p := range ds.pools {
		vk.ResetDescriptorPool(d.dev, p, 0)
	}
	ds.cache = map[descKey]vk.DescriptorSet{}
	ds.cur, ds.used, ds.allocated = 0, 0, 0
	ds.gen++
}

// dropDescriptors forgets sets that reference a destroyed block.
func (d *Device) dropDescriptors(blk uint64) {
	for k := range d.desc.cache {
		for i := 0; i < k.n; i++ {
			if k.b[i].blk == blk {
				delete(d.desc.cache, k)
				break
			}
		}
	}
}

func (ds *descriptors) destroy(d *Device) {
	for _, p := range ds.pools {
		vk.DestroyDescriptorPool(d.dev, p, nil)
	}
	ds.pools = nil
}
