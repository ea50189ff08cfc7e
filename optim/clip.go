package optim

import (
	"encoding/binary"
	"fmt"
	"math"

	"blip/gpu"
)

// Gradient-norm reduction: each gradient run is squared into a scratch
// buffer piece by piece (Binary mul), every piece summed by rows into a
// partial-sum buffer (Reduce, rows of clipRow elements, then rows of 64
// for the rest, then one short row), and the partial sums reduced to one
// value that Step reads back. Rows of thousands of elements keep the
// partial sums few, so the last Reduce is a single short row.
const (
	clipRow     = 4096
	clipTailRow = 64
	// clipScratch is the scratch size in elements (16 MiB): large enough
	// that per-piece overhead does not matter, small next to the model.
	clipScratch = 1 << 22
)

// clipper holds the buffers and the recorded calls of the norm.
type clipper struct {
	scratch gpu.Buffer
	partial gpu.Buffer
	out     gpu.Buffer
	calls   []gpu.Call
}

func (c *clipper) buffers() []gpu.Buffer {
	var bs []gpu.Buffer
	for _, b := range []gpu.Buffer{c.scratch, c.partial, c.out} {
		if b != nil {
			bs = append(bs, b)
		}
	}
	return bs
}

// build makes the calls for the squared norm of grads. Buffers are
// allocated on first use and grown (rarely: only when the Frozen flags
// change) when the partial sums outgrow them.
func (c *clipper) build(be gpu.Backend, grads []gpu.View) error {
	var largest int64
	for _, g := range grads {
		largest = max(largest, g.Len)
	}
	pieceMax := min(largest, clipScratch)
	if c.scratch == nil || c.scratch.Bytes() < pieceMax*4 {
		if c.scratch != nil {
			be.Free(c.scratch)
			c.scratch = nil
		}
		b, err := be.Alloc(max(pieceMax, 1) * 4)
		if err != nil {
			return fmt.Errorf("optim: gradient-norm scratch: %w", err)
		}
		c.scratch = b
	}
	if c.out == nil {
		b, err := be.Alloc(4)
		if err != nil {
			return fmt.Errorf("optim: gradient norm: %w", err)
		}
		c.out = b
	}
	// Count the partial sums first to size their buffer.
	var parts int64
	pieces(grads, func(_ gpu.View, n int64) { parts += partsOf(n) })
	if c.partial == nil || c.partial.Bytes() < parts*4 {
		if c.partial != nil {
			be.Free(c.partial)
			c.partial = nil
		}
		b, err := be.Alloc(max(parts, 1) * 4)
		if err != nil {
			return fmt.Errorf("optim: gradient-norm partial sums: %w", err)
		}
		c.partial = b
	}
	scratch := gpu.Whole(c.scratch, gpu.F32)
	partial := gpu.Whole(c.partial, gpu.F32)
	c.calls = c.calls[:0]
	var k int64
	pieces(grads, func(g gpu.View, n int64) {
		sq := scratch.Slice(0, n)
		c.calls = append(c.calls, gpu.Binary{Op: gpu.BinaryMul, A: g, B: g, C: sq, N: int(n)})
		var off int64
		for _, cols := range []int64{clipRow, clipTailRow, 0} {
			rows := int64(1)
			if cols == 0 {
				cols = n - off
			} else {
				rows = (n - off) / cols
			}
			if rows == 0 || cols == 0 {
				continue
			}
			c.calls = append(c.calls, gpu.Reduce{Op: gpu.ReduceSum, X: sq.Slice(off, rows*cols),
				Y: partial.Slice(k, rows), Rows: int(rows), Cols: int(cols)})
			off += rows * cols
			k += rows
		}
	})
	if k > 0 {
		c.calls = append(c.calls, gpu.Reduce{Op: gpu.ReduceSum, X: partial.Slice(0, k),
			Y: gpu.Whole(c.out, gpu.F32).Slice(0, 1), Rows: 1, Cols: int(k)})
	}
	return nil
}

// pieces calls f for every scratch-sized piece of the gradient views.
func pieces(grads []gpu.View, f func(g gpu.View, n int64)) {
	for _, g := range grads {
		for off := int64(0); off < g.Len; off += clipScratch {
			n := min(clipScratch, g.Len-off)
			f(g.Slice(off, n), n)
		}
	}
}

// partsOf is the number of partial sums build writes for a piece of n.
func partsOf(n int64) int64 {
	p := n / clipRow
	n -= p * clipRow
	p += n / clipTailRow
	if n%clipTailRow != 0 {
		p++
	}
	return p
}

// norm records the reduction and reads the L2 norm back.
func (c *clipper) norm(be gpu.Backend) (float64, error) {
	if len(c.calls) == 0 {
		return 0, nil
	}
	if err := be.Do(c.calls...); err != nil {
		return 0, fmt.Errorf("optim: gradient norm: %w", err)
	}
	var b [4]byte
	if err := be.Read(c.out, 0, b[:]); err != nil {
		return 0, fmt.Errorf("optim: gradient norm: %w", err)
	}
	sq := math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
	return math.Sqrt(float64(sq)), nil
}
