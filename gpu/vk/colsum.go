package vk

import (
	"fmt"

	"blip/gpu"
)

// colsum: shaders/colsum.comp in one or two stages (see gpu.ColumnBlock):
// blocks of rows summed into Scratch, then the partial rows into Y. The
// column reductions of layernorm_bwd and act_bwd end with its second stage.
func init() {
	kernels["colsum"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		s := callAs[gpu.ColumnSum](c)
		cols := int64(s.Cols)
		if s.Rows <= gpu.ColumnBlock {
			return colsumDispatches(d, "colsum", s.X, cols, s.Rows, s.Cols, gpu.ColumnBlock, s.Y, cols, s.Accumulate)
		}
		parts := ceilDiv(int64(s.Rows), gpu.ColumnBlock)
		scratch := s.Scratch.Slice(0, parts*cols)
		out, err := colsumDispatches(d, "colsum", s.X, cols, s.Rows, s.Cols, gpu.ColumnBlock, scratch, cols, false)
		if err != nil {
			return nil, err
		}
		fin, err := colsumFinal(d, "colsum", scratch, s.Rows, s.Cols, s.Y, s.Accumulate)
		return append(out, fin...), err
	}
}

// colsumFinal is the second stage of a column reduction of (rows, cols):
// the partial rows in scratch summed in order into y (added to with acc).
func colsumFinal(d *Device, kernel string, scratch gpu.View, rows, cols int, y gpu.View, acc bool) ([]dispatch, error) {
	parts := int(ceilDiv(int64(rows), gpu.ColumnBlock))
	return colsumDispatches(d, kernel, scratch, int64(cols), parts, cols, parts, y, int64(cols), acc)
}

// colsumDispatches sums the blocks of block rows of x (rows, cols, row stride
// ldx) into the rows of y (one per block, row stride ldy). The work is cut
// into ranges of whole blocks and, where a block exceeds a binding, of
// columns, so that every binding and grid fits.
func colsumDispatches(d *Device, kernel string, x gpu.View, ldx int64, rows, cols, block int, y gpu.View, ldy int64, acc bool) ([]dispatch, error) {
	wg := int64(d.rowThreads())
	lim := d.bindLimit() / 4
	b := int64(block)
	// Columns per dispatch: all, unless one block of rows does not fit.
	w := int64(cols)
	if (b-1)*ldx+w > lim {
		w = lim - (b-1)*ldx
		if w > wg {
			w = w / wg * wg
		}
		if w <= 0 {
			return nil, fmt.Errorf("%s: a block of %d rows with a row stride of %d elements exceeds the device's storage-buffer binding limit of %d bytes", kernel, block, ldx, d.maxBind)
		}
	}
	w = min(w, d.maxGridGroups()*wg)
	parts := ceilDiv(int64(rows), b)
	var out []dispatch
	for c0 := int64(0); c0 < int64(cols); c0 += w {
		wc := min(w, int64(cols)-c0)
		tiles := ceilDiv(wc, wg)
		// Blocks per dispatch: within the X and Y bindings and the grid.
		np := (lim - wc + ldx) / (b * ldx)
		np = min(np, (lim-wc)/ldy+1, d.maxGridGroups()/tiles, parts)
		np = max(np, 1)
		for p0 := int64(0); p0 < parts; p0 += np {
			n := min(np, parts-p0)
			r0 := p0 * b
			nr := min(n*b, int64(rows)-r0)
			xv := x.Slice(r0*ldx+c0, (nr-1)*ldx+wc)
			yv := y.Slice(p0*ldy+c0, (n-1)*ldy+wc)
			g, err := d.grid(kernel, n*tiles)
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "colsum",
				spec:   []uint32{uint32(wg)},
				binds:  []binding{rd(xv), wr(yv)},
				push: []uint32{uint32(nr), uint32(wc), uint32(block), uint32(ldx), uint32(ldy),
					d.elemOff(xv), d.elemOff(yv), b2u(acc)},
				groups: g,
			})
		}
	}
	return out, nil
}

// blockRows is how many rows (a multiple of gpu.ColumnBlock, or all) one
// dispatch of a column-parallel first stage may cover when each row spans
// rowElems elements of its largest view and tiles workgroups cover a block.
func (d *Device) blockRows(kernel string, rows int, rowElems, tiles int64) (int, error) {
	lim := d.bindLimit() / 4
	if b := int64(min(rows, gpu.ColumnBlock)); b*rowElems > lim {
		return 0, fmt.Errorf("%s: a block of %d rows of %d elements exceeds the device's storage-buffer binding limit of %d bytes", kernel, b, rowElems, d.maxBind)
	}
	blocks := min(lim/(gpu.ColumnBlock*rowElems), d.maxGridGroups()/tiles)
	if tiles > d.maxGridGroups() {
		return 0, fmt.Errorf("%s: %d workgroups per row block exceed the device's grid", kernel, tiles)
	}
	if rows <= gpu.ColumnBlock {
		return rows, nil
	}
	return int(max(1, min(blocks*gpu.ColumnBlock, int64(rows)))), nil
}
