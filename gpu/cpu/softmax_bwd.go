package cpu

import (
	"blip/gpu"
)

func init() {
	twins["softmax_bwd"] = func(c gpu.Call) { softmaxBackward(c.(gpu.SoftmaxBackward)) }
}

// softmaxBackward: DX = Scale * Y * (DY - sum(DY*Y)) per row, in float64.
// DX may alias DY or Y: each element is read before it is written.
func softmaxBackward(s gpu.SoftmaxBackward) {
	rows, cols := s.Rows, s.Cols
	y, dy, dx := f32(s.Y), f32(s.DY), f32(s.DX)
	scale := float64(s.Scale)
	if scale == 0 {
		scale = 1
	}
	parallel(rows, int64(rows)*int64(cols)*2, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			yr, dyr, dxr := y[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
			var dot float64
			for j, v := range yr {
				dot += float64(v) * float64(dyr[j])
			}
			for j, v := range yr {
				dxr[j] = float32(scale * float64(v) * (float64(dyr[j]) - dot))
			}
		}
	})
}
