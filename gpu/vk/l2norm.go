package vk

import (
	"blip/gpu"
)

// l2norm: shaders/l2norm.comp, one workgroup per row.
func init() {
	kernels["l2norm"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		l := callAs[gpu.L2Normalize](c)
		cols := int64(l.Cols)
		return d.rowDispatches("l2norm", l.Rows, cols, []rowView{rowIn(l.X, cols), rowOut(l.Y, cols)}, f32bits(l.Eps))
	}
}
