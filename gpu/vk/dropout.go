package vk

import (
	"blip/gpu"
)

// dropout: shaders/dropout.comp, one invocation per four elements (one
// Philox block), in element ranges (multiples of 4) that fit a binding and
// the grid; each range passes its first block's counter. The key comes
// from the push constants, or from binding 2 (SEEDBUF) when the call has
// Seeds.
func init() {
	kernels["dropout"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		k := callAs[gpu.Dropout](c)
		n := int64(k.N)
		wg := d.flatThreads()
		chunk := min(d.limitElems(), d.maxGridGroups()*int64(wg)*4) &^ 3
		var out []dispatch
		for s := int64(0); s < n; s += chunk {
			m := min(chunk, n-s)
			x, y := k.X.Slice(s, m), k.Y.Slice(s, m)
			g, err := d.grid("dropout", ceilDiv(ceilDiv(m, 4), int64(wg)))
			if err != nil {
				return nil, err
			}
			ctr := uint64(s / 4)
			seeds := k.Seeds
			if seeds.Buf != nil {
				seeds = seeds.Slice(0, 2)
			}
			out = append(out, dispatch{
				shader: "dropout",
				spec:   []uint32{wg, b2u(k.P == 0), b2u(seeds.Buf != nil)},
				binds:  []binding{rd(x), wr(y), rd(seeds)},
				push: []uint32{uint32(m), d.elemOff(x), d.elemOff(y), uint32(ctr), uint32(ctr >> 32),
					uint32(k.Seed), uint32(k.Seed >> 32), k.Threshold(), f32bits(k.KeepScale()), d.elemOff(seeds)},
				groups: g,
			})
		}
		return out, nil
	}
}
