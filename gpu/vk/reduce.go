package vk

import (
	"blip/gpu"
)

// reduce: shaders/reduce.comp, one workgroup per row, rows split into
// ranges that fit a binding.
func init() {
	kernels["reduce"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		r := callAs[gpu.Reduce](c)
		cols := int64(r.Cols)
		chunk, err := d.rowChunk("reduce", r.Rows, cols)
		if err != nil {
			return nil, err
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < r.Rows; r0 += chunk {
			n := min(chunk, r.Rows-r0)
			x := r.X.Slice(int64(r0)*cols, int64(n)*cols)
			y := r.Y.Slice(int64(r0), int64(n))
			g, err := d.grid("reduce", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "reduce",
				spec:   []uint32{wg, uint32(r.Op)},
				binds:  []binding{rd(x), wr(y)},
				push:   []uint32{uint32(n), uint32(cols), d.elemOff(x), d.elemOff(y)},
				groups: g,
			})
		}
		return out, nil
	}
}
