package vk

import (
	"blip/gpu"
)

// act_bwd: shaders/act_bwd.comp. Without DBias, MODE 0 over the flat
// elements in ranges that fit a binding and the grid; with DBias, MODE 1
// writes DX and the sums of blocks of gpu.ColumnBlock rows (into Scratch, or
// straight into DBias for a single block), then colsum.comp adds the partial
// rows to DBias.
func init() {
	kernels["act_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		a := callAs[gpu.ActBackward](c)
		spec := func(wg uint32, mode uint32) []uint32 {
			return []uint32{wg, uint32(a.Act), b2u(a.FromOutput), mode}
		}
		slice := func(v gpu.View, off, n int64) gpu.View {
			if v.Buf == nil {
				return v
			}
			return v.Slice(off, n)
		}
		if a.DBias.Buf == nil {
			return d.flatDispatches("act_bwd", int64(a.Rows)*int64(a.Cols), func(s, m int64, wg uint32, g [3]uint32) dispatch {
				x, dy, dx := slice(a.X, s, m), a.DY.Slice(s, m), a.DX.Slice(s, m)
				return dispatch{
					shader: "act_bwd",
					spec:   spec(wg, 0),
					binds:  []binding{rd(x), rd(dy), wr(dx), {}},
					push:   []uint32{uint32(m), 1, offIfSet(d, x), d.elemOff(dy), d.elemOff(dx), 0, 0, 0, 0},
					groups: g,
				}
			})
		}
		rows, cols := a.Rows, int64(a.Cols)
		wg := int64(d.rowThreads())
		tiles := ceilDiv(cols, wg)
		chunk, err := d.blockRows("act_bwd", rows, cols, tiles)
		if err != nil {
			return nil, err
		}
		direct := rows <= gpu.ColumnBlock
		part := a.DBias.Slice(0, cols)
		if !direct {
			part = a.Scratch.Slice(0, gpu.ColumnScratchLen(rows, a.Cols))
		}
		var out []dispatch
		for r0 := 0; r0 < rows; r0 += chunk {
			n := min(chunk, rows-r0)
			p0 := int64(r0 / gpu.ColumnBlock)
			np := ceilDiv(int64(n), gpu.ColumnBlock)
			x := slice(a.X, int64(r0)*cols, int64(n)*cols)
			dy := a.DY.Slice(int64(r0)*cols, int64(n)*cols)
			dx := a.DX.Slice(int64(r0)*cols, int64(n)*cols)
			p := part.Slice(p0*cols, np*cols)
			g, err := d.grid("act_bwd", np*tiles)
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "act_bwd",
				spec:   spec(uint32(wg), 1),
				binds:  []binding{rd(x), rd(dy), wr(dx), wr(p)},
				push: []uint32{uint32(n), uint32(cols), offIfSet(d, x), d.elemOff(dy), d.elemOff(dx), d.elemOff(p),
					gpu.ColumnBlock, uint32(cols), b2u(direct)},
				groups: g,
			})
		}
		if !direct {
			fin, err := colsumFinal(d, "act_bwd", part, rows, a.Cols, a.DBias.Slice(0, cols), true)
			if err != nil {
				return nil, err
			}
			out = append(out, fin...)
		}
		return out, nil
	}
}
