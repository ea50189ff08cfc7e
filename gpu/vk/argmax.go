package vk

import (
	"blip/gpu"
)

// argmax: shaders/argmax.comp, one workgroup per row; with NLL
// shaders/argmax_nll.comp.
func init() {
	kernels["argmax"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		a := callAs[gpu.ArgMax](c)
		cols := int64(a.Cols)
		if a.NLL.Buf != nil {
			return d.rowDispatches("argmax_nll", a.Rows, cols, []rowView{rowIn(a.X, cols), rowOut(a.Y, 1), rowOut(a.NLL, 1)})
		}
		return d.rowDispatches("argmax", a.Rows, cols, []rowView{rowIn(a.X, cols), rowOut(a.Y, 1)})
	}
}
