package vk

import (
	"blip/gpu"
)

// unary: shaders/unary.comp, one invocation per element or per four
// (vec4) when both views start 16-byte aligned in their bindings. Views over
// a binding's limit are processed in element ranges.
func init() {
	kernels["unary"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		u := callAs[gpu.Unary](c)
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
			out = append(out, dispatch{
				shader: "unary",
				spec:   []uint32{wg, uint32(u.Op), b2u(vec)},
				binds:  []binding{rd(x), wr(y)},
				push:   []uint32{uint32(m), d.elemOff(x), d.elemOff(y), f32bits(u.Alpha)},
				groups: g,
			})
		}
		return out, nil
	}
}
