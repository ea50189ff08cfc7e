package vk

import (
	"fmt"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// Recording: calls become dispatches in a command buffer; a buffer is
// submitted when it holds its share of dispatches (so the device starts
// while the host records more) or at Sync. Barriers are inserted only where
// a dispatch touches bytes that an earlier dispatch since the last barrier
// wrote (RAW, WAW) or read (WAR).

// The first buffer after a Sync is submitted at firstPerCB dispatches, each
// next one at twice its predecessor's count, up to maxPerCB: the device
// starts on a window's first kernels after a few microseconds of
// recording, where at a flat 512 it waited for about five decoded tokens'
// worth (0.25-0.4 ms of recording per token on the development machine),
// for a handful of submits more per window.
const (
	firstPerCB = 32
	maxPerCB   = 512
)

type access struct {
	blk    uint64
	lo, hi int64 // bytes in the block
}

type cmdSlot struct {
	cb        vk.CommandBuffer
	fence     vk.Fence
	submitted bool
	query     vk.QueryPool // timestamps, when profiling
	names     []string     // kernel per timestamp pair
}

type recorder struct {
	pool        vk.CommandPool
	slots       []*cmdSlot
	cur         *cmdSlot
	inCur       int
	perCB       int // dispatches that submit the current buffer
	reads       []access
	writes      []access
	outstanding bool // work recorded or submitted since the last Sync
	// touched is, per block, the range of bytes that work recorded or
	// submitted since the last Sync reads or writes (widened): a Write
	// elsewhere in mapped memory needs no wait.
	touched    []access
	lastPipe   vk.Pipeline
	dummy      *buffer // bound in place of unset optional views
	barriers   int     // statistics: barriers and dispatches recorded
	dispatches int
}

func (r *recorder) init(d *Device) error {
	ci := vk.CommandPoolCreateInfo{
		SType:            vk.StructureTypeCommandPoolCreateInfo,
		Flags:            vk.CommandPoolCreateFlags(vk.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: d.phys.queueFamily,
	}
	var pool vk.CommandPool
	if err := check("vkCreateCommandPool", vk.CreateCommandPool(d.dev, &ci, nil, &pool)); err != nil {
		return err
	}
	r.pool = pool
	b, err := d.Alloc(allocAlign)
	if err != nil {
		return err
	}
	r.dummy = b.(*buffer)
	return nil
}

func (r *recorder) destroy(d *Device) {
	for _, s := range r.slots {
		vk.DestroyFence(d.dev, s.fence, nil)
		if s.query != vk.NullQueryPool {
			vk.DestroyQueryPool(d.dev, s.query, nil)
		}
	}
	r.slots = nil
	if r.pool != vk.NullCommandPool {
		vk.DestroyCommandPool(d.dev, r.pool, nil)
		r.pool = vk.NullCommandPool
	}
}

func (d *Device) pendingWork() bool { return d.rec.outstanding }

// begin makes sure a command buffer is recording.
func (d *Device) begin() error {
	r := &d.rec
	if r.cur != nil {
		return nil
	}
	var slot *cmdSlot
	for _, s := range r.slots {
		if !s.submitted {
			slot = s
			break
		}
	}
	if slot == nil {
		slot = &cmdSlot{}
		cbs := make([]vk.CommandBuffer, 1)
		ai := vk.CommandBufferAllocateInfo{
			SType:              vk.StructureTypeCommandBufferAllocateInfo,
			CommandPool:        r.pool,
			Level:              vk.CommandBufferLevelPrimary,
			CommandBufferCount: 1,
		}
		if err := check("vkAllocateCommandBuffers", vk.AllocateCommandBuffers(d.dev, &ai, cbs)); err != nil {
			return err
		}
		slot.cb = cbs[0]
		fi := vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}
		var fence vk.Fence
		if err := check("vkCreateFence", vk.CreateFence(d.dev, &fi, nil, &fence)); err != nil {
			return err
		}
		slot.fence = fence
		r.slots = append(r.slots, slot)
	}
	bi := vk.CommandBufferBeginInfo{
		SType: vk.StructureTypeCommandBufferBeginInfo,
		Flags: vk.CommandBufferUsageFlags(vk.CommandBufferUsageOneTimeSubmitBit),
	}
	if err := check("vkBeginCommandBuffer", vk.BeginCommandBuffer(slot.cb, &bi)); err != nil {
		return err
	}
	r.cur, r.inCur, r.lastPipe = slot, 0, vk.NullPipeline
	if r.outstanding {
		r.perCB = min(2*r.perCB, maxPerCB)
	} else {
		r.perCB = firstPerCB
	}
	r.outstanding = true
	slot.names = slot.names[:0]
	if d.prof.on {
		if err := d.prof.prepare(d, slot); err != nil {
			return err
		}
	}
	return nil
}

const (
	allStages    = vk.PipelineStageFlags(vk.PipelineStageComputeShaderBit | vk.PipelineStageTransferBit)
	writeAccess  = vk.AccessFlags(vk.AccessShaderWriteBit | vk.AccessTransferWriteBit)
	anyAccess    = vk.AccessFlags(vk.AccessShaderReadBit | vk.AccessShaderWriteBit | vk.AccessTransferReadBit | vk.AccessTransferWriteBit)
	hostStage    = vk.PipelineStageFlags(vk.PipelineStageHostBit)
	hostReadBits = vk.AccessFlags(vk.AccessHostReadBit)
)

func (d *Device) barrier() {
	r := &d.rec
	d.fn.cmdBarrier(r.cur.cb, allStages, allStages, writeAccess, anyAccess)
	r.reads, r.writes = r.reads[:0], r.writes[:0]
	r.barriers++
}

func overlaps(list []access, a access) bool {
	for _, x := range list {
		if x.blk == a.blk && x.lo < a.hi && a.lo < x.hi {
			return true
		}
	}
	return false
}

// hazard inserts a barrier if the accesses conflict with pending ones, then
// records them as pending.
func (d *Device) hazard(reads, writes []access) {
	r := &d.rec
	conflict := false
	for _, a := range reads {
		if overlaps(r.writes, a) {
			conflict = true
			break
		}
	}
	if !conflict {
		for _, a := range writes {
			if overlaps(r.writes, a) || overlaps(r.reads, a) {
				conflict = true
				break
			}
		}
	}
	if conflict {
		d.barrier()
	}
	r.reads = append(r.reads, reads...)
	r.writes = append(r.writes, writes...)
	r.touched = widen(widen(r.touched, reads), writes)
}

// submit ends and submits the recording command buffer without waiting.
func (d *Device) submit() error {
	r := &d.rec
	if r.cur == nil {
		return nil
	}
	s := r.cur
	r.cur = nil
	// Make device writes visible to the host once the fence signals.
	d.fn.cmdBarrier(s.cb, allStages, hostStage, writeAccess, hostReadBits)
	if err := check("vkEndCommandBuffer", vk.EndCommandBuffer(s.cb)); err != nil {
		return err
	}
	if err := check("vkQueueSubmit", d.fn.queueSubmit(d.q, s.cb, h64(unsafe.Pointer(s.fence)))); err != nil {
		return err
	}
	s.submitted = true
	return nil
}

// Do implements gpu.Backend.
func (d *Device) Do(calls ...gpu.Call) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("vulkan: device is closed")
	}
	return d.doLocked(calls)
}

func (d *Device) doLocked(calls []gpu.Call) error {
	all, names, err := d.lower(calls)
	if err != nil {
		return err
	}
	for i := range all {
		if err := d.record(&all[i], names[i]); err != nil {
			return err
		}
	}
	return nil
}

// lower checks calls and turns them into dispatches, with the kernel name
// of each.
func (d *Device) lower(calls []gpu.Call) ([]dispatch, []string, error) {
	var all []dispatch
	var names []string
	for _, c := range calls {
		if err := c.Check(); err != nil {
			return nil, nil, err
		}
		if err := d.ownViews(c); err != nil {
			return nil, nil, err
		}
	}
	for i := 0; i < len(calls); i++ {
		c := calls[i]
		if n, ds := d.groupRows(calls[i:]); n > 0 {
			// Adjacent products of one A as one dispatch (gemm_group.go).
			all, names = append(all, ds), append(names, c.Kernel())
			i += n - 1
			continue
		}
		kf, ok := kernels[c.Kernel()]
		if !ok {
			return nil, nil, fmt.Errorf("%s: no Vulkan kernel registered", c.Kernel())
		}
		ds, err := kf(d, c)
		if err != nil {
			return nil, nil, err
		}
		for range ds {
			names = append(names, c.Kernel())
		}
		all = append(all, ds...)
	}
	return all, names, nil
}

// ownViews checks that every view of c is a live buffer of this device.
func (d *Device) ownViews(c gpu.Call) error {
	var err error
	forEachView(c, func(name string, v gpu.View) {
		if err != nil || v.Buf == nil {
			return
		}
		b, ok := v.Buf.(*buffer)
		if !ok || b.dev != d {
			err = fmt.Errorf("%s: %s belongs to backend %s, not %s", c.Kernel(), name, v.Buf.Owner().Name(), d.Name())
		} else if b.freed {
			err = fmt.Errorf("%s: %s uses a freed buffer", c.Kernel(), name)
		}
	})
	return err
}

func (d *Device) record(ds *dispatch, name string) error {
	if err := d.begin(); err != nil {
		return err
	}
	r := &d.rec
	pl, set, reads, writes, err := d.prepare(ds)
	if err != nil {
		return err
	}
	if d.prof.on {
		d.barrier() // timing one kernel at a time
		r.reads, r.writes = append(r.reads, reads...), append(r.writes, writes...)
		r.touched = widen(widen(r.touched, reads), writes)
	} else {
		d.hazard(reads, writes)
	}
	if d.prof.on {
		// kernel/shader where the call's kernel has several (the
		// tensor-core GEMM, split-K attention): the limiter is a shader.
		if ds.shader != name {
			name += "/" + ds.shader
		}
		d.prof.before(r.cur, name)
	}
	if err := d.emit(r.cur.cb, &r.lastPipe, pl, set, ds); err != nil {
		return err
	}
	if d.prof.on {
		d.prof.after(r.cur)
	}
	r.dispatches++
	r.inCur++
	if r.inCur >= r.perCB || (d.prof.on && len(r.cur.names) >= maxTimed) {
		return d.submit()
	}
	return nil
}

// prepare finds (or builds) a dispatch's pipeline and descriptor set and
// lists the bytes it reads and writes.
func (d *Device) prepare(ds *dispatch) (pl *pipeline, set vk.DescriptorSet, reads, writes []access, err error) {
	pl, err = d.pipes.get(d, ds.shader, len(ds.binds), ds.spec)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var key descKey
	key.n = len(ds.binds)
	bufs := make([]vk.Buffer, len(ds.binds))
	for i, bd := range ds.binds {
		v := bd.v
		if v.Buf == nil {
			v = gpu.View{Buf: d.rec.dummy, Len: 1, DType: gpu.F32}
		}
		b := v.Buf.(*buffer)
		lo := b.off + v.ByteOff()
		hi := lo + max(v.Bytes(), 4)
		start := lo / d.bindAlign * d.bindAlign
		if hi-start > d.maxBind {
			return nil, nil, nil, nil, fmt.Errorf("%s: binding %d spans %d bytes, over the device limit of %d (the kernel must split it)", ds.shader, i, hi-start, d.maxBind)
		}
		key.b[i] = bindKey{blk: b.blk.id, off: start, rng: hi - start}
		bufs[i] = b.blk.buf
		a := access{blk: b.blk.id, lo: lo, hi: hi}
		if bd.write {
			writes = append(writes, a)
		} else {
			reads = append(reads, a)
		}
	}
	set, err = d.desc.set(d, key, bufs)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return pl, set, reads, writes, nil
}

// emit records one dispatch into cb: pipeline (unless *last is it
// already), descriptor set, push constants and the dispatch itself.
func (d *Device) emit(cb vk.CommandBuffer, last *vk.Pipeline, pl *pipeline, set vk.DescriptorSet, ds *dispatch) error {
	g := ds.groups
	for i := range g {
		if g[i] == 0 {
			g[i] = 1
		}
		if g[i] > d.maxGroups[i] {
			return fmt.Errorf("%s: %d workgroups in dimension %d, over the device limit of %d", ds.shader, g[i], i, d.maxGroups[i])
		}
	}
	if n := len(ds.push); n*4 > pushBytes {
		return fmt.Errorf("%s: %d bytes of push constants, over %d", ds.shader, n*4, pushBytes)
	}
	if pl.h != *last {
		vk.CmdBindPipeline(cb, vk.PipelineBindPointCompute, pl.h)
		*last = pl.h
	}
	vk.CmdBindDescriptorSets(cb, vk.PipelineBindPointCompute, pl.layout, 0, 1, []vk.DescriptorSet{set}, 0, nil)
	if n := len(ds.push); n > 0 {
		vk.CmdPushConstants(cb, pl.layout, vk.ShaderStageFlags(vk.ShaderStageComputeBit), 0, uint32(n*4), unsafe.Pointer(&ds.push[0]))
	}
	vk.CmdDispatch(cb, g[0], g[1], g[2])
	return nil
}

// fill records vkCmdFillBuffer of n bytes at byte off of b with a 32-bit value.
func (d *Device) fill(b *buffer, off, n int64, value uint32) error {
	if err := d.begin(); err != nil {
		return err
	}
	lo := b.off + off
	d.hazard(nil, []access{{b.blk.id, lo, lo + n}})
	vk.CmdFillBuffer(d.rec.cur.cb, b.blk.buf, vk.DeviceSize(lo), vk.DeviceSize(n), value)
	return nil
}

// Sync implements gpu.Backend.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncLocked()
}

func (d *Device) syncLocked() error {
	r := &d.rec
	err := d.submit()
	var fences []vk.Fence
	var done []*cmdSlot
	for _, s := range r.slots {
		if s.submitted {
			fences = append(fences, s.fence)
			done = append(done, s)
		}
	}
	if len(fences) > 0 {
		for {
			res := vk.WaitForFences(d.dev, uint32(len(fences)), fences, vk.True, 10_000_000_000)
			if res == vk.Timeout {
				continue
			}
			if e := check("vkWaitForFences", res); e != nil && err == nil {
				err = e
			}
			break
		}
		vk.ResetFences(d.dev, uint32(len(fences)), fences)
	}
	for _, s := range done {
		if d.prof.on || len(s.names) > 0 {
			d.prof.collect(d, s)
		}
		vk.ResetCommandBuffer(s.cb, 0)
		s.submitted = false
	}
	r.outstanding = false
	r.reads, r.writes, r.touched = r.reads[:0], r.writes[:0], r.touched[:0]
	for _, b := range d.deferred {
		d.release(b)
	}
	d.deferred = d.deferred[:0]
	d.desc.trim(d)
	if e := d.inst.takeMessages(); e != nil && err == nil {
		err = e
	}
	return err
}

// Stats returns the dispatches and barriers recorded since the device was
// opened (a measure of how well independent work is batched).
func (d *Device) Stats() (dispatches, barriers int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rec.dispatches, d.rec.barriers
}
