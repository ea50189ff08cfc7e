package vk

import (
	"blip/gpu"
)

// softmax: shaders/softmax.comp, one workgroup per row. Rows are split into
// ranges that fit a binding; the mask rows of a range are bound from the
// first one it uses, with phase = r0 % MaskGroup so that the shader's
// (phase + row) / group is the mask row within that sub-view.
func init() {
	kernels["softmax"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		s := callAs[gpu.Softmax](c)
		cols := int64(s.Cols)
		chunk, err := d.rowChunk("softmax", s.Rows, cols)
		if err != nil {
			return nil, err
		}
		group := int64(max(s.MaskGroup, 1))
		scale := s.Scale
		if scale == 0 {
			scale = 1
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < s.Rows; r0 += chunk {
			n := min(chunk, s.Rows-r0)
			x := s.X.Slice(int64(r0)*cols, int64(n)*cols)
			y := s.Y.Slice(int64(r0)*cols, int64(n)*cols)
			var mask gpu.View
			phase := int64(0)
			if s.Mask.Buf != nil {
				m0 := int64(r0) / group
				m1 := int64(r0+n-1) / group
				mask = s.Mask.Slice(m0*cols, (m1-m0+1)*cols)
				phase = int64(r0) % group
			}
			g, err := d.grid("softmax", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "softmax",
				spec:   []uint32{wg},
				binds:  []binding{rd(x), rd(mask), wr(y)},
				push: []uint32{uint32(n), uint32(cols), d.elemOff(x), offIfSet(d, mask), d.elemOff(y),
					b2u(mask.Buf != nil), uint32(group), uint32(phase), f32bits(scale)},
				groups: g,
			})
		}
		return out, nil
	}
}

// offIfSet is elemOff for an optional view (0 when unset: the runtime binds
// a dummy buffer).
func offIfSet(d *Device, v gpu.View) uint32 {
	if v.Buf == nil {
		return 0
	}
	return d.elemOff(v)
}
