package vk

import (
	"blip/gpu"
)

// layernorm: shaders/layernorm.comp, one workgroup per row (the residual
// sum too, gpu.LayerNorm.R), rows split into ranges that fit a binding;
// layernorm_h.comp for a 16-bit Y (its type the second specialization
// constant).
func init() {
	kernels["layernorm"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		l := callAs[gpu.LayerNorm](c)
		if err := d.need16("layernorm", l.Y); err != nil {
			return nil, err
		}
		shader, spec := "layernorm", []uint32{d.rowThreads()}
		if l.Y.DType != gpu.F32 {
			shader, spec = "layernorm_h", append(spec, dtCode(l.Y.DType))
		}
		cols := int64(l.Cols)
		chunk, err := d.rowChunk("layernorm", l.Rows, cols)
		if err != nil {
			return nil, err
		}
		gamma, beta := l.Gamma.Slice(0, cols), l.Beta.Slice(0, cols)
		var out []dispatch
		for r0 := 0; r0 < l.Rows; r0 += chunk {
			n := min(chunk, l.Rows-r0)
			x := l.X.Slice(int64(r0)*cols, int64(n)*cols)
			y := l.Y.Slice(int64(r0)*cols, int64(n)*cols)
			var mean, rstd gpu.View
			flags := uint32(0)
			if l.Mean.Buf != nil {
				mean = l.Mean.Slice(int64(r0), int64(n))
				flags |= 1
			}
			if l.Rstd.Buf != nil {
				rstd = l.Rstd.Slice(int64(r0), int64(n))
				flags |= 2
			}
			var res, sum gpu.View
			if l.R.Buf != nil {
				res = l.R.Slice(int64(r0)*cols, int64(n)*cols)
				flags |= 4
			}
			if l.S.Buf != nil {
				sum = l.S.Slice(int64(r0)*cols, int64(n)*cols)
				flags |= 8
			}
			g, err := d.grid("layernorm", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: shader,
				spec:   spec,
				binds:  []binding{rd(x), rd(gamma), rd(beta), wr(y), wr(mean), wr(rstd), rd(res), wr(sum)},
				push: []uint32{uint32(n), uint32(cols), d.elemOff(x), d.elemOff(gamma), d.elemOff(beta), d.elemOff(y),
					offIfSet(d, mean), offIfSet(d, rstd), flags, f32bits(l.Eps), offIfSet(d, res), offIfSet(d, sum)},
				groups: g,
			})
		}
		return out, nil
	}
}
