package vk

import (
	"blip/gpu"
)

// layernorm_bwd: shaders/layernorm_bwd.comp. DGamma and DBeta first (DX may
// overwrite DY): MODE 1 sums blocks of gpu.ColumnBlock rows into the two
// halves of Scratch, colsum.comp adds their partial rows to DGamma and DBeta
// (with a single block MODE 1 adds to them directly); then MODE 0 writes DX,
// one workgroup per row. Rows are split into ranges that fit a binding.
func init() {
	kernels["layernorm_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		l := callAs[gpu.LayerNormBackward](c)
		rows, cols := l.Rows, int64(l.Cols)
		gamma := l.Gamma.Slice(0, cols)
		var out []dispatch
		if l.DGamma.Buf != nil || l.DBeta.Buf != nil {
			wg := int64(d.rowThreads())
			tiles := ceilDiv(cols, wg)
			chunk, err := d.blockRows("layernorm_bwd", rows, cols, tiles)
			if err != nil {
				return nil, err
			}
			direct := rows <= gpu.ColumnBlock
			sn := gpu.ColumnScratchLen(rows, l.Cols)
			var pg, pb gpu.View // partial rows: Scratch halves, or DGamma/DBeta
			flags := uint32(0)
			if l.DGamma.Buf != nil {
				flags |= 1
				pg = l.DGamma.Slice(0, cols)
				if !direct {
					pg = l.Scratch.Slice(0, sn)
				}
			}
			if l.DBeta.Buf != nil {
				flags |= 2
				pb = l.DBeta.Slice(0, cols)
				if !direct {
					pb = l.Scratch.Slice(sn, sn)
				}
			}
			if direct {
				flags |= 4
			}
			for r0 := 0; r0 < rows; r0 += chunk {
				n := min(chunk, rows-r0)
				p0 := int64(r0 / gpu.ColumnBlock)
				np := ceilDiv(int64(n), gpu.ColumnBlock)
				x := l.X.Slice(int64(r0)*cols, int64(n)*cols)
				dy := l.DY.Slice(int64(r0)*cols, int64(n)*cols)
				mean, rstd := l.Mean.Slice(int64(r0), int64(n)), l.Rstd.Slice(int64(r0), int64(n))
				var g, b gpu.View
				if pg.Buf != nil {
					g = pg.Slice(p0*cols, np*cols)
				}
				if pb.Buf != nil {
					b = pb.Slice(p0*cols, np*cols)
				}
				grid, err := d.grid("layernorm_bwd", np*tiles)
				if err != nil {
					return nil, err
				}
				out = append(out, dispatch{
					shader: "layernorm_bwd",
					spec:   []uint32{uint32(wg), 1},
					binds:  []binding{rd(x), rd(dy), {}, rd(mean), rd(rstd), {}, wr(g), wr(b)},
					push: []uint32{uint32(n), uint32(cols), d.elemOff(x), d.elemOff(dy), 0, d.elemOff(mean), d.elemOff(rstd), 0,
						offIfSet(d, g), offIfSet(d, b), gpu.ColumnBlock, uint32(cols), flags},
					groups: grid,
				})
			}
			if !direct {
				for _, f := range []struct{ part, dst gpu.View }{{pg, l.DGamma}, {pb, l.DBeta}} {
					if f.part.Buf == nil {
						continue
					}
					fin, err := colsumFinal(d, "layernorm_bwd", f.part, rows, l.Cols, f.dst.Slice(0, cols), true)
					if err != nil {
						return nil, err
					}
					out = append(out, fin...)
				}
			}
		}
		chunk, err := d.rowChunk("layernorm_bwd", rows, cols)
		if err != nil {
			return nil, err
		}
		wg := d.rowThreads()
		for r0 := 0; r0 < rows; r0 += chunk {
			n := min(chunk, rows-r0)
			x := l.X.Slice(int64(r0)*cols, int64(n)*cols)
			dy := l.DY.Slice(int64(r0)*cols, int64(n)*cols)
			dx := l.DX.Slice(int64(r0)*cols, int64(n)*cols)
			mean, rstd := l.Mean.Slice(int64(r0), int64(n)), l.Rstd.Slice(int64(r0), int64(n))
			g, err := d.grid("layernorm_bwd", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "layernorm_bwd",
				spec:   []uint32{wg, 0},
				binds:  []binding{rd(x), rd(dy), rd(gamma), rd(mean), rd(rstd), wr(dx), {}, {}},
				push: []uint32{uint32(n), uint32(cols), d.elemOff(x), d.elemOff(dy), d.elemOff(gamma), d.elemOff(mean),
					d.elemOff(rstd), d.elemOff(dx), 0, 0, gpu.ColumnBlock, uint32(cols), 0},
				groups: g,
			})
		}
		return out, nil
	}
}
