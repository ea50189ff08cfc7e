package vk

import (
	"fmt"
	"os"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// Transfers. Host-visible device memory is written directly, and read
// directly where the mapping is host-cached (CPU and integrated devices);
// otherwise data bounces through a host-visible (preferably cached) staging
// block in chunks.

const stagingBytes = int64(64) << 20

// readUncached makes Read copy straight out of uncached mappings too
// (BLIP_READ_UNCACHED=1), to measure what the staging copy saves.
var readUncached = os.Getenv("BLIP_READ_UNCACHED") == "1"

func (d *Device) hostBuffer(gb gpu.Buffer, off, n int64, what string) (*buffer, error) {
	b, ok := gb.(*buffer)
	if !ok || b.dev != d {
		return nil, fmt.Errorf("vulkan %s: buffer does not belong to %s", what, d.Name())
	}
	if b.freed {
		return nil, fmt.Errorf("vulkan %s: buffer was freed", what)
	}
	if off < 0 || n < 0 || off+n > b.size {
		return nil, fmt.Errorf("vulkan %s: bytes [%d, %d) outside a buffer of %d bytes", what, off, off+n, b.size)
	}
	return b, nil
}

func (d *Device) stagingBlock() (*block, error) {
	if d.staging != nil {
		return d.staging, nil
	}
	if d.hostType < 0 {
		return nil, fmt.Errorf("vulkan: no host-visible memory type for staging")
	}
	s, err := d.newBlock(stagingBytes, d.hostType, vk.BufferUsageTransferSrcBit|vk.BufferUsageTransferDstBit)
	if err != nil {
		return nil, err
	}
	d.staging = s
	return s, nil
}

// copyBuf records a buffer-to-buffer copy (used with the staging block, which
// no dispatch touches, so only the device side needs hazard tracking).
func (d *Device) copyBuf(src, dst *block, srcOff, dstOff, n int64, devWrite bool) error {
	if err := d.begin(); err != nil {
		return err
	}
	if devWrite {
		d.hazard(nil, []access{{dst.id, dstOff, dstOff + n}})
	} else {
		d.hazard([]access{{src.id, srcOff, srcOff + n}}, nil)
	}
	d.fn.cmdCopy(d.rec.cur.cb, h64(unsafe.Pointer(src.buf)), h64(unsafe.Pointer(dst.buf)), srcOff, dstOff, n)
	return nil
}

// Write implements gpu.Backend.
func (d *Device) Write(gb gpu.Buffer, off int64, src []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := d.hostBuffer(gb, off, int64(len(src)), "write")
	if err != nil || len(src) == 0 {
		return err
	}
	// Work recorded before this Write must not see the new bytes: wait for
	// it, unless the bytes are mapped and none of it touches them (a
	// plan's dropout seeds, say, written after the step's first calls).
	lo := b.off + off
	mappedFree := b.blk.mapped != nil && !overlaps(d.rec.touched, access{b.blk.id, lo, lo + int64(len(src))})
	if d.pendingWork() && !mappedFree {
		if err := d.syncLocked(); err != nil {
			return err
		}
	}
	if b.blk.mapped != nil {
		copy(unsafe.Slice((*byte)(unsafe.Add(b.blk.mapped, b.off+off)), len(src)), src)
		return nil
	}
	st, err := d.stagingBlock()
	if err != nil {
		return err
	}
	for done := int64(0); done < int64(len(src)); {
		n := min(int64(len(src))-done, st.size)
		copy(unsafe.Slice((*byte)(st.mapped), n), src[done:done+n])
		if err := d.copyBuf(st, b.blk, 0, b.off+off+done, n, true); err != nil {
			return err
		}
		if err := d.syncLocked(); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// Read implements gpu.Backend.
func (d *Device) Read(gb gpu.Buffer, off int64, dst []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := d.hostBuffer(gb, off, int64(len(dst)), "read")
	if err != nil || len(dst) == 0 {
		return err
	}
	if b.blk.mapped != nil && (b.blk.cached || readUncached) {
		if d.pendingWork() {
			if err := d.syncLocked(); err != nil {
				return err
			}
		}
		copy(dst, unsafe.Slice((*byte)(unsafe.Add(b.blk.mapped, b.off+off)), len(dst)))
		return nil
	}
	// Unmapped, or mapped without host caching (device-local memory behind
	// a discrete GPU's BAR): the device copies into the staging block,
	// which the CPU reads at memory speed. The first copy is recorded
	// after the pending work (a barrier orders it), so a decoding step and
	// the read of its logits are one submission.
	st, err := d.stagingBlock()
	if err != nil {
		return err
	}
	for done := int64(0); done < int64(len(dst)); {
		n := min(int64(len(dst))-done, st.size)
		if err := d.copyBuf(b.blk, st, b.off+off+done, 0, n, false); err != nil {
			return err
		}
		if err := d.syncLocked(); err != nil {
			return err
		}
		copy(dst[done:done+n], unsafe.Slice((*byte)(st.mapped), n))
		done += n
	}
	return nil
}
