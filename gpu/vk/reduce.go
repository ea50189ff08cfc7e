package vk

import (
	"blip/gpu"
)

// reduce: shaders/reduce.comp, one workgroup per row; the operation is a
// specialization constant.
func init() {
	kernels["reduce"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		r := callAs[gpu.Reduce](c)
		cols := int64(r.Cols)
		ds, err := d.rowDispatches("reduce", r.Rows, cols, []rowView{rowIn(r.X, cols), rowOut(r.Y, 1)})
		for i := range ds {
			ds[i].spec = append(ds[i].spec, uint32(r.Op))
		}
		return ds, err
	}
}
