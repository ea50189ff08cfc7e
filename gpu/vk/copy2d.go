package vk

import (
	"fmt"

	"blip/gpu"
)

// copy2d: shaders/copy2d.comp, one invocation per element, rows split into
// ranges whose spans fit a binding and the grid.
func init() {
	kernels["copy2d"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		k := callAs[gpu.Copy2D](c)
		ldx, ldy := k.Lds()
		cols := int64(k.Cols)
		wg := int64(d.flatThreads())
		lim := d.bindLimit() / 4
		ld := int64(max(ldx, ldy))
		if cols > lim {
			return nil, fmt.Errorf("copy2d: one row of %d elements exceeds the device's storage-buffer binding limit of %d bytes", cols, d.maxBind)
		}
		chunk := min((lim-cols)/ld+1, d.maxGridGroups()*wg/cols, int64(k.Rows))
		if chunk < 1 {
			return nil, fmt.Errorf("copy2d: one row of %d elements exceeds the device's grid", cols)
		}
		var out []dispatch
		for r0 := int64(0); r0 < int64(k.Rows); r0 += chunk {
			n := min(chunk, int64(k.Rows)-r0)
			x := k.X.Slice(r0*int64(ldx), (n-1)*int64(ldx)+cols)
			y := k.Y.Slice(r0*int64(ldy), (n-1)*int64(ldy)+cols)
			g, err := d.grid("copy2d", ceilDiv(n*cols, wg))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "copy2d",
				spec:   []uint32{uint32(wg), b2u(k.Accumulate)},
				binds:  []binding{rd(x), wr(y)},
				push:   []uint32{uint32(n), uint32(cols), uint32(ldx), uint32(ldy), d.elemOff(x), d.elemOff(y)},
				groups: g,
			})
		}
		return out, nil
	}
}
