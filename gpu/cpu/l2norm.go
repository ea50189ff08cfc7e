package cpu

import (
	"math"

	"blip/gpu"
)

func init() {
	twins["l2norm"] = func(c gpu.Call) { l2Normalize(c.(gpu.L2Normalize)) }
}

// l2Normalize: Y = X / max(||X||, Eps) per row, in float64. Y may alias X.
func l2Normalize(l gpu.L2Normalize) {
	rows, cols := l.Rows, l.Cols
	x, y := f32(l.X), f32(l.Y)
	parallel(rows, int64(rows)*int64(cols)*2, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			var ss float64
			for _, v := range xr {
				ss += float64(v) * float64(v)
			}
			d := max(math.Sqrt(ss), float64(l.Eps))
			for j, v := range xr {
				yr[j] = float32(float64(v) / d)
			}
		}
	})
}
