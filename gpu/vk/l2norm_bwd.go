package vk

import (
	"blip/gpu"
)

// l2norm_bwd: shaders/l2norm_bwd.comp, one workgroup per row.
func init() {
	kernels["l2norm_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		l := callAs[gpu.L2NormalizeBackward](c)
		cols := int64(l.Cols)
		return d.rowDispatches("l2norm_bwd", l.Rows, cols,
			[]rowView{rowIn(l.X, cols), rowIn(l.DY, cols), rowOut(l.DX, cols)}, f32bits(l.Eps))
	}
}
