package vk

import (
	"blip/gpu"
)

// argmax: shaders/argmax.comp, one workgroup per row.
func init() {
	kernels["argmax"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		a := callAs[gpu.ArgMax](c)
		cols := int64(a.Cols)
		return d.rowDispatches("argmax", a.Rows, cols, []rowView{rowIn(a.X, cols), rowOut(a.Y, 1)})
	}
}
