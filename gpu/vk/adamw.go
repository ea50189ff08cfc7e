package vk

import (
	"blip/gpu"
)

// adamw: shaders/adamw.comp, one invocation per element, in element ranges
// that fit a binding and the grid.
func init() {
	kernels["adamw"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		a := callAs[gpu.AdamW](c)
		decay, step, bc2sqrt, gscale := a.Scalars()
		return d.flatDispatches("adamw", int64(a.N), func(s, m int64, wg uint32, grid [3]uint32) dispatch {
			p, g, mv, v := a.Param.Slice(s, m), a.Grad.Slice(s, m), a.M.Slice(s, m), a.V.Slice(s, m)
			return dispatch{
				shader: "adamw",
				spec:   []uint32{wg},
				binds:  []binding{wr(p), rd(g), wr(mv), wr(v)},
				push: []uint32{uint32(m), d.elemOff(p), d.elemOff(g), d.elemOff(mv), d.elemOff(v),
					f32bits(a.Beta1), f32bits(a.Beta2), f32bits(a.Eps), f32bits(decay), f32bits(step), f32bits(bc2sqrt), f32bits(gscale)},
				groups: grid,
			}
		})
	}
}
