package vk

import (
	"blip/gpu"
)

// cross_entropy: shaders/cross_entropy.comp, one workgroup per row, rows
// split into ranges that fit a binding.
func init() {
	kernels["cross_entropy"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		k := callAs[gpu.CrossEntropy](c)
		cols := int64(k.Cols)
		chunk, err := d.rowChunk("cross_entropy", k.Rows, cols)
		if err != nil {
			return nil, err
		}
		scale := k.Scale
		if scale == 0 {
			scale = 1
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < k.Rows; r0 += chunk {
			n := min(chunk, k.Rows-r0)
			z := k.Logits.Slice(int64(r0)*cols, int64(n)*cols)
			labels := k.Labels.Slice(int64(r0), int64(n))
			var loss, dz gpu.View
			flags := uint32(0)
			if k.Loss.Buf != nil {
				loss = k.Loss.Slice(int64(r0), int64(n))
				flags |= 1
			}
			if k.DLogits.Buf != nil {
				dz = k.DLogits.Slice(int64(r0)*cols, int64(n)*cols)
				flags |= 2
			}
			g, err := d.grid("cross_entropy", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "cross_entropy",
				spec:   []uint32{wg},
				binds:  []binding{rd(z), rd(labels), wr(loss), wr(dz)},
				push: []uint32{uint32(n), uint32(cols), d.elemOff(z), d.elemOff(labels), offIfSet(d, loss), offIfSet(d, dz),
					flags, f32bits(k.Smoothing), f32bits(scale)},
				groups: g,
			})
		}
		return out, nil
	}
}
