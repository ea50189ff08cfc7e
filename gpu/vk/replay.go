package vk

import (
	"fmt"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// Captured call sequences (gpu.Capturer): the dispatches of a fixed list of
// calls are recorded once into a secondary command buffer, and every
// Replay.Record after that is one vkCmdExecuteCommands in the current
// primary buffer. Host cost per run no longer grows with the number of
// kernels: no lowering, descriptor lookups, hazard scans or per-dispatch
// driver calls.
//
// A secondary buffer inherits no state, so it binds its own pipelines; its
// barriers cover the hazards between its own dispatches, and the primary
// treats the whole sequence as one dispatch that reads and writes the union
// of its ranges (a barrier before it when that conflicts with pending work).
//
// A capture is recorded again, transparently, when what it baked in has
// gone: descriptor sets (the cache was trimmed) or an internal buffer such
// as the attention scratch (replaced by a larger one). A call's own buffer
// freed since the capture is an error, as it would be for Do.

// replay is one captured sequence.
type replay struct {
	d      *Device
	calls  []gpu.Call
	cb     vk.CommandBuffer // secondary; nil until recorded
	gen    uint64           // descriptor generation it was recorded under
	bufs   []*buffer        // every buffer its dispatches bind
	reads  []access         // per block: the union of what it reads
	writes []access         // and writes
	n      int              // dispatches
	takes  int              // times recorded (1 + recaptures)
	freed  bool
}

// Capture implements gpu.Capturer: calls are checked now (an invalid call
// is an error, as for Do) and recorded for replay.
func (d *Device) Capture(calls ...gpu.Call) (gpu.Replay, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("vulkan: device is closed")
	}
	rp := &replay{d: d, calls: append([]gpu.Call(nil), calls...)}
	if err := rp.capture(); err != nil {
		rp.release()
		return nil, err
	}
	return rp, nil
}

// capture (re)records the secondary command buffer. d.mu is held, and no
// submitted work may still use the buffer (fresh, or after a Sync).
func (rp *replay) capture() error {
	d := rp.d
	all, _, err := d.lower(rp.calls)
	if err != nil {
		return err
	}
	if rp.cb == nil {
		cbs := make([]vk.CommandBuffer, 1)
		ai := vk.CommandBufferAllocateInfo{
			SType:              vk.StructureTypeCommandBufferAllocateInfo,
			CommandPool:        d.rec.pool,
			Level:              vk.CommandBufferLevelSecondary,
			CommandBufferCount: 1,
		}
		if err := check("vkAllocateCommandBuffers (secondary)", vk.AllocateCommandBuffers(d.dev, &ai, cbs)); err != nil {
			return err
		}
		rp.cb = cbs[0]
	} else if err := check("vkResetCommandBuffer", vk.ResetCommandBuffer(rp.cb, 0)); err != nil {
		return err
	}
	inh := vk.CommandBufferInheritanceInfo{SType: vk.StructureTypeCommandBufferInheritanceInfo}
	bi := vk.CommandBufferBeginInfo{
		SType: vk.StructureTypeCommandBufferBeginInfo,
		// The same sequence may run twice in one submission.
		Flags:            vk.CommandBufferUsageFlags(vk.CommandBufferUsageSimultaneousUseBit),
		PInheritanceInfo: []vk.CommandBufferInheritanceInfo{inh},
	}
	if err := check("vkBeginCommandBuffer (secondary)", vk.BeginCommandBuffer(rp.cb, &bi)); err != nil {
		return err
	}
	rp.gen = d.desc.gen
	rp.takes++
	rp.bufs, rp.reads, rp.writes, rp.n = rp.bufs[:0], nil, nil, len(all)
	var pend hazards
	seen := map[*buffer]bool{}
	last := vk.NullPipeline
	for i := range all {
		ds := &all[i]
		pl, set, reads, writes, err := d.prepare(ds)
		if err != nil {
			vk.EndCommandBuffer(rp.cb)
			return err
		}
		if pend.conflicts(reads, writes) {
			d.fn.cmdBarrier(rp.cb, allStages, allStages, writeAccess, anyAccess)
			pend = hazards{}
		}
		pend.reads, pend.writes = append(pend.reads, reads...), append(pend.writes, writes...)
		rp.reads, rp.writes = widen(rp.reads, reads), widen(rp.writes, writes)
		for _, bd := range ds.binds {
			if b, ok := bd.v.Buf.(*buffer); ok && !seen[b] {
				seen[b] = true
				rp.bufs = append(rp.bufs, b)
			}
		}
		if err := d.emit(rp.cb, &last, pl, set, ds); err != nil {
			vk.EndCommandBuffer(rp.cb)
			return err
		}
	}
	return check("vkEndCommandBuffer (secondary)", vk.EndCommandBuffer(rp.cb))
}

// Record implements gpu.Replay.
func (rp *replay) Record() error {
	d := rp.d
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return fmt.Errorf("vulkan: device is closed")
	case rp.freed:
		return fmt.Errorf("vulkan: replay of %d calls used after Free", len(rp.calls))
	case d.prof.on:
		// Per-kernel timestamps need the dispatches one by one.
		return d.doLocked(rp.calls)
	}
	stale := rp.gen != d.desc.gen
	for _, b := range rp.bufs {
		stale = stale || b.freed
	}
	if stale {
		// Recording again resets the secondary buffer, which pending
		// primaries may still execute.
		if d.pendingWork() {
			if err := d.syncLocked(); err != nil {
				return err
			}
		}
		if err := rp.capture(); err != nil {
			return err
		}
	}
	if err := d.begin(); err != nil {
		return err
	}
	r := &d.rec
	d.hazard(rp.reads, rp.writes)
	vk.CmdExecuteCommands(r.cur.cb, 1, []vk.CommandBuffer{rp.cb})
	r.lastPipe = vk.NullPipeline // undefined after a secondary buffer
	r.dispatches += rp.n
	r.inCur += rp.n
	if r.inCur >= r.perCB {
		return d.submit()
	}
	return nil
}

// Free implements gpu.Replay.
func (rp *replay) Free() {
	d := rp.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if rp.freed {
		return
	}
	if !d.closed && rp.cb != nil && d.pendingWork() {
		d.syncLocked() // a pending primary may execute it; its errors surface at the next Sync
	}
	rp.release()
}

func (rp *replay) release() {
	d := rp.d
	if !d.closed && rp.cb != nil {
		vk.FreeCommandBuffers(d.dev, d.rec.pool, 1, []vk.CommandBuffer{rp.cb})
	}
	rp.cb, rp.bufs, rp.freed = nil, nil, true
}

// hazards are the accesses recorded since the last barrier of a command
// buffer.
type hazards struct{ reads, writes []access }

func (h *hazards) conflicts(reads, writes []access) bool {
	for _, a := range reads {
		if overlaps(h.writes, a) {
			return true
		}
	}
	for _, a := range writes {
		if overlaps(h.writes, a) || overlaps(h.reads, a) {
			return true
		}
	}
	return false
}

// widen adds accesses to a per-block union: one range per block, from the
// lowest byte touched to the highest. Coarser than the exact list, which
// only costs a barrier the exact list might have spared.
func widen(u []access, as []access) []access {
next:
	for _, a := range as {
		for i := range u {
			if u[i].blk == a.blk {
				u[i].lo, u[i].hi = min(u[i].lo, a.lo), max(u[i].hi, a.hi)
				continue next
			}
		}
		u = append(u, a)
	}
	return u
}
