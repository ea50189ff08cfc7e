package cpu

import (
	"math"

	"blip/gpu"
)

func init() {
	twins["l2norm_bwd"] = func(c gpu.Call) { l2NormalizeBackward(c.(gpu.L2NormalizeBackward)) }
}

// l2NormalizeBackward: with n = ||X||, DX = (DY - X*(X.DY)/n^2)/n where
// n >= Eps, else DY/Eps; per row in float64. DX may alias DY.
func l2NormalizeBackward(l gpu.L2NormalizeBackward) {
	rows, cols := l.Rows, l.Cols
	x, dy, dx := f32(l.X), f32(l.DY), f32(l.DX)
	eps := float64(l.Eps)
	parallel(rows, int64(rows)*int64(cols)*3, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			xr, dyr, dxr := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
			var ss, dot float64
			for j, v := range xr {
				ss += float64(v) * float64(v)
				dot += float64(v) * float64(dyr[j])
			}
			n := math.Sqrt(ss)
			if n < eps {
				for j, v := range dyr {
					dxr[j] = float32(float64(v) / eps)
				}
				continue
			}
			for j, v := range xr {
				dxr[j] = float32((float64(dyr[j]) - float64(v)*dot/ss) / n)
			}
		}
	})
}
