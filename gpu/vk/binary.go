package vk

import (
	"blip/gpu"
)

// binary: shaders/binary.comp. C[i] = A[i] op B[(phase + i) % bn]: B is
// indexed like A (BMODE 0), a scalar (1) or a row broadcast (2). Views over a
// binding's limit are processed in element ranges; a broadcast B that is
// itself too large is cut along with them, one period of B at a time.
func init() {
	kernels["binary"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		b := callAs[gpu.Binary](c)
		n := int64(b.N)
		bn := int64(b.BN)
		if bn == 0 {
			bn = n
		}
		wg := d.flatThreads()
		chunk := d.flatChunk(wg)
		var out []dispatch
		for s := int64(0); s < n; {
			m := min(chunk, n-s)
			mode, phase := uint32(2), int64(0)
			var bv gpu.View
			switch {
			case bn == n:
				mode, bv = 0, b.B.Slice(s, m)
			case bn == 1:
				mode, bv = 1, b.B.Slice(0, 1)
			case bn <= chunk:
				bv, phase = b.B.Slice(0, bn), s%bn
			default:
				// B exceeds a binding: stay within one period of it, where
				// B is indexed like A.
				m = min(m, (s/bn+1)*bn-s)
				mode, bv = 0, b.B.Slice(s%bn, m)
			}
			av, cv := b.A.Slice(s, m), b.C.Slice(s, m)
			vec := d.elemOff(av)%4 == 0 && d.elemOff(cv)%4 == 0
			if mode == 0 {
				vec = vec && d.elemOff(bv)%4 == 0
			} else if mode == 2 {
				vec = vec && d.elemOff(bv)%4 == 0 && bn%4 == 0 && phase%4 == 0
			}
			threads := m
			if vec {
				threads = ceilDiv(m, 4)
			}
			g, err := d.grid("binary", ceilDiv(threads, int64(wg)))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "binary",
				spec:   []uint32{wg, uint32(b.Op), b2u(vec), mode},
				binds:  []binding{rd(av), rd(bv), wr(cv)},
				push:   []uint32{uint32(m), uint32(bn), uint32(phase), d.elemOff(av), d.elemOff(bv), d.elemOff(cv)},
				groups: g,
			})
			s += m
		}
		return out, nil
	}
}
