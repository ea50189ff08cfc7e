package vk

import (
	"blip/gpu"
)

// argmax: shaders/argmax.comp, one workgroup per row, rows split into ranges
// that fit a binding.
func init() {
	kernels["argmax"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		a := callAs[gpu.ArgMax](c)
		cols := int64(a.Cols)
		chunk, err := d.rowChunk("argmax", a.Rows, cols)
		if err != nil {
			return nil, err
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < a.Rows; r0 += chunk {
			n := min(chunk, a.Rows-r0)
			x := a.X.Slice(int64(r0)*cols, int64(n)*cols)
			y := a.Y.Slice(int64(r0), int64(n))
			g, err := d.grid("argmax", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "argmax",
				spec:   []uint32{wg},
				binds:  []binding{rd(x), wr(y)},
				push:   []uint32{uint32(n), uint32(cols), d.elemOff(x), d.elemOff(y)},
				groups: g,
			})
		}
		return out, nil
	}
}
