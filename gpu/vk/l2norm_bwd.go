package vk

import (
	"blip/gpu"
)

// l2norm_bwd: shaders/l2norm_bwd.comp, one workgroup per row, rows split
// into ranges that fit a binding.
func init() {
	kernels["l2norm_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		l := callAs[gpu.L2NormalizeBackward](c)
		cols := int64(l.Cols)
		chunk, err := d.rowChunk("l2norm_bwd", l.Rows, cols)
		if err != nil {
			return nil, err
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < l.Rows; r0 += chunk {
			n := min(chunk, l.Rows-r0)
			x := l.X.Slice(int64(r0)*cols, int64(n)*cols)
			dy := l.DY.Slice(int64(r0)*cols, int64(n)*cols)
			dx := l.DX.Slice(int64(r0)*cols, int64(n)*cols)
			g, err := d.grid("l2norm_bwd", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "l2norm_bwd",
				spec:   []uint32{wg},
				binds:  []binding{rd(x), rd(dy), wr(dx)},
				push:   []uint32{uint32(n), uint32(cols), d.elemOff(x), d.elemOff(dy), d.elemOff(dx), f32bits(l.Eps)},
				groups: g,
			})
		}
		return out, nil
	}
}
