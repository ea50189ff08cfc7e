package vk

import (
	"blip/gpu"
)

// softmax_bwd: shaders/softmax_bwd.comp, one workgroup per row.
func init() {
	kernels["softmax_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		s := callAs[gpu.SoftmaxBackward](c)
		cols := int64(s.Cols)
		scale := s.Scale
		if scale == 0 {
			scale = 1
		}
		return d.rowDispatches("softmax_bwd", s.Rows, cols,
			[]rowView{rowIn(s.Y, cols), rowIn(s.DY, cols), rowOut(s.DX, cols)}, f32bits(scale))
	}
}
