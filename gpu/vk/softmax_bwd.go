package vk

import (
	"blip/gpu"
)

// softmax_bwd: shaders/softmax_bwd.comp, one workgroup per row, rows split
// into ranges that fit a binding.
func init() {
	kernels["softmax_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		s := callAs[gpu.SoftmaxBackward](c)
		cols := int64(s.Cols)
		chunk, err := d.rowChunk("softmax_bwd", s.Rows, cols)
		if err != nil {
			return nil, err
		}
		scale := s.Scale
		if scale == 0 {
			scale = 1
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < s.Rows; r0 += chunk {
			n := min(chunk, s.Rows-r0)
			y := s.Y.Slice(int64(r0)*cols, int64(n)*cols)
			dy := s.DY.Slice(int64(r0)*cols, int64(n)*cols)
			dx := s.DX.Slice(int64(r0)*cols, int64(n)*cols)
			g, err := d.grid("softmax_bwd", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "softmax_bwd",
				spec:   []uint32{wg},
				binds:  []binding{rd(y), rd(dy), wr(dx)},
				push:   []uint32{uint32(n), uint32(cols), d.elemOff(y), d.elemOff(dy), d.elemOff(dx), f32bits(scale)},
				groups: g,
			})
		}
		return out, nil
	}
}
