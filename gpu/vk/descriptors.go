package vk

import (
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Descriptor sets are cached by what they bind, so a forward pass replayed
// every step (or every decode token) reuses its sets instead of writing new
// ones.

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
	pools []vk.DescriptorPool
	cache map[descKey]vk.DescriptorSet
	gen   uint64 // counts trims: sets from an older generation are gone
}

func (ds *descriptors) init(d *Device) error {
	ds.cache = map[descKey]vk.DescriptorSet{}
	return ds.addPool(d)
}

func (ds *descriptors) addPool(d *Device) error {
	ci := vk.DescriptorPoolCreateInfo{
		SType:         vk.StructureTypeDescriptorPoolCreateInfo,
		MaxSets:       setsPerPool,
		PoolSizeCount: 1,
		PPoolSizes:    []vk.DescriptorPoolSize{{Type: vk.DescriptorTypeStorageBuffer, DescriptorCount: setsPerPool * maxBindings}},
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

// set returns a descriptor set binding the given ranges to bindings 0..n-1.
func (ds *descriptors) set(d *Device, key descKey, bufs []vk.Buffer) (vk.DescriptorSet, error) {
	if s, ok := ds.cache[key]; ok {
		return s, nil
	}
	layout := d.pipes.setLayouts[key.n]
	var s vk.DescriptorSet
	ai := vk.DescriptorSetAllocateInfo{
		SType:              vk.StructureTypeDescriptorSetAllocateInfo,
		DescriptorPool:     ds.pools[len(ds.pools)-1],
		DescriptorSetCount: 1,
		PSetLayouts:        []vk.DescriptorSetLayout{layout},
	}
	r := vk.AllocateDescriptorSets(d.dev, &ai, &s)
	if r == vk.ErrorOutOfPoolMemory || r == vk.ErrorFragmentedPool {
		if err := ds.addPool(d); err != nil {
			return nil, err
		}
		ai.DescriptorPool = ds.pools[len(ds.pools)-1]
		r = vk.AllocateDescriptorSets(d.dev, &ai, &s)
	}
	if err := check("vkAllocateDescriptorSets", r); err != nil {
		return nil, err
	}
	hs, offs, rngs := make([]uint64, key.n), make([]uint64, key.n), make([]uint64, key.n)
	for i := 0; i < key.n; i++ {
		hs[i], offs[i], rngs[i] = h64(unsafe.Pointer(bufs[i])), uint64(key.b[i].off), uint64(key.b[i].rng)
	}
	d.fn.updateStorageSet(d.dev, h64(unsafe.Pointer(s)), hs, offs, rngs)
	ds.cache[key] = s
	return s, nil
}

// trim resets the pools when the cache has grown too large. Only call it when
// no recorded work is pending.
func (ds *descriptors) trim(d *Device) {
	if len(ds.cache) < maxCachedSets {
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
