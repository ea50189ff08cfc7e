package vk

import (
	"fmt"

	"blip/gpu"
)

func init() {
	kernels["cast"] = castKernel
}

// dtCode is a view type as half.glsl numbers it.
func dtCode(d gpu.DType) uint32 {
	switch d {
	case gpu.F16:
		return 1
	case gpu.BF16:
		return 2
	}
	return 0
}

// castKernel: shaders/cast.comp, one invocation per element, in element
// ranges that fit a binding. 16-bit views need the device's 16-bit storage.
func castKernel(d *Device, c gpu.Call) ([]dispatch, error) {
	k := callAs[gpu.Cast](c)
	if err := d.need16("cast", k.X, k.Y); err != nil {
		return nil, err
	}
	return d.flatDispatches("cast", int64(k.N), func(s, m int64, wg uint32, g [3]uint32) dispatch {
		x, y := k.X.Slice(s, m), k.Y.Slice(s, m)
		return dispatch{
			shader: "cast",
			spec:   []uint32{wg, dtCode(x.DType), dtCode(y.DType)},
			binds:  []binding{rd(x), wr(y)},
			push:   []uint32{uint32(m), d.elemOff(x), d.elemOff(y)},
			groups: g,
		}
	})
}

// need16 refuses 16-bit views on a device without 16-bit storage buffers.
func (d *Device) need16(kernel string, views ...gpu.View) error {
	for _, v := range views {
		if v.Buf != nil && v.DType.Size() == 2 && !d.info.Storage16 {
			return fmt.Errorf("%s: device %s has no 16-bit storage buffers for %s views (use --precision fp32)", kernel, d.info.Name, v.DType)
		}
	}
	return nil
}
