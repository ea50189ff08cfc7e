package vk

import (
	"blip/gpu"
)

// unary: shaders/unary.comp, one invocation per element or per four
// (vec4) when both views start 16-byte aligned in their bindings. Views over
// a binding's limit are processed in element ranges. A 16-bit Y runs on
// unary_h.comp.
func init() {
	kernels["unary"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		u := callAs[gpu.Unary](c)
		shader, spec := "unary", []uint32{0, uint32(u.Op), 0}
		if u.Y.DType != u.X.DType {
			if err := d.need16("unary", u.Y); err != nil {
				return nil, err
			}
			shader, spec = "unary_h", append(spec, dtCode(u.Y.DType)) // a 16-bit Y
		}
		n := int64(u.N)
		wg := d.flatThreads()
		chunk := d.flatChunk(wg)
		var out []dispatch
		for s := int64(0); s < n; s += chunk {
			m := min(chunk, n-s)
			x, y := u.X.Slice(s, m), u.Y.Slice(s, m)
			vec := d.elemOff(x)%4 == 0 && d.elemOff(y)%4 == 0
			threads := m
			if vec {
				threads = ceilDiv(m, 4)
			}
			g, err := d.grid("unary", ceilDiv(threads, int64(wg)))
			if err != nil {
				return nil, err
			}
			sp := append([]uint32(nil), spec...)
			sp[0], sp[2] = wg, b2u(vec)
			out = append(out, dispatch{
				shader: shader,
				spec:   sp,
				binds:  []binding{rd(x), wr(y)},
				push:   []uint32{uint32(m), d.elemOff(x), d.elemOff(y), f32bits(u.Alpha)},
				groups: g,
			})
		}
		return out, nil
	}
}
