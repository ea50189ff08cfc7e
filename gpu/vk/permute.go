package vk

import (
	"fmt"

	"blip/gpu"
)

// permute: shaders/permute.comp, one invocation per output element of a box
// of the output. The whole output is one box unless X or Y exceeds a
// binding: then boxes are halved along the dimension that contributes most
// to their footprint until both sub-views fit.
func init() {
	kernels["permute"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		p := callAs[gpu.Permute](c)
		var in, out [4]int64
		for i := 0; i < 4; i++ {
			in[i] = int64(p.Shape[i])
		}
		os := p.OutShape()
		for i := range out {
			out[i] = int64(os[i])
		}
		var inStride, xs, ys [4]int64
		inStride[3], ys[3] = 1, 1
		for i := 2; i >= 0; i-- {
			inStride[i] = inStride[i+1] * in[i+1]
			ys[i] = ys[i+1] * out[i+1]
		}
		for i := 0; i < 4; i++ {
			xs[i] = inStride[p.Perm[i]]
		}
		wg := d.flatThreads()
		limit := d.bindLimit() / p.X.DType.Size()
		maxElems := d.maxGridGroups() * int64(wg)

		type box struct{ lo, ext [4]int64 }
		span := func(b box, s [4]int64) (off, n int64) {
			n = 1
			for i := 0; i < 4; i++ {
				off += b.lo[i] * s[i]
				n += (b.ext[i] - 1) * s[i]
			}
			return off, n
		}
		var out4 []dispatch
		var walk func(b box) error
		walk = func(b box) error {
			count := b.ext[0] * b.ext[1] * b.ext[2] * b.ext[3]
			xo, xn := span(b, xs)
			yo, yn := span(b, ys)
			if xn > limit || yn > limit || count > maxElems {
				// Halve the dimension with the largest footprint.
				best, bestSize := -1, int64(0)
				for i := 0; i < 4; i++ {
					if b.ext[i] > 1 {
						if sz := (b.ext[i] - 1) * max(xs[i], ys[i]); sz >= bestSize {
							best, bestSize = i, sz
						}
					}
				}
				if best < 0 || len(out4) > 4096 {
					return fmt.Errorf("permute: shape %v perm %v (%d elements) cannot be split into parts that fit the device's storage-buffer binding limit of %d bytes", p.Shape, p.Perm, in[0]*in[1]*in[2]*in[3], d.maxBind)
				}
				h := b.ext[best] / 2
				a, z := b, b
				a.ext[best] = h
				z.lo[best] += h
				z.ext[best] -= h
				if err := walk(a); err != nil {
					return err
				}
				return walk(z)
			}
			x, y := p.X.Slice(xo, xn), p.Y.Slice(yo, yn)
			g, err := d.grid("permute", ceilDiv(count, int64(wg)))
			if err != nil {
				return err
			}
			out4 = append(out4, dispatch{
				shader: "permute",
				spec:   []uint32{wg},
				binds:  []binding{rd(x), wr(y)},
				push: []uint32{uint32(count), uint32(b.ext[1]), uint32(b.ext[2]), uint32(b.ext[3]),
					uint32(ys[0]), uint32(ys[1]), uint32(ys[2]), uint32(ys[3]),
					uint32(xs[0]), uint32(xs[1]), uint32(xs[2]), uint32(xs[3]),
					d.elemOff(x), d.elemOff(y)},
				groups: g,
			})
			return nil
		}
		if err := walk(box{ext: out}); err != nil {
			return nil, err
		}
		return out4, nil
	}
}
