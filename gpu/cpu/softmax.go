package cpu

import (
	"math"

	"blip/gpu"
)

// softmax: Y[r, :] = softmax(Scale*X[r, :] + Mask[r/MaskGroup, :]), computed
// in float64 and rounded once. A row whose maximum is -Inf (every entry
// masked) gives zeros. Y may alias X.
func softmax(s gpu.Softmax) {
	rows, cols := s.Rows, s.Cols
	x, y, mask := f32(s.X), f32(s.Y), f32(s.Mask)
	scale := float64(s.Scale)
	if scale == 0 {
		scale = 1
	}
	group := max(s.MaskGroup, 1)
	parallel(rows, int64(rows)*int64(cols)*8, func(r0, r1 int) {
		z := make([]float64, cols)
		for r := r0; r < r1; r++ {
			xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			var mr []float32
			if mask != nil {
				m := r / group
				mr = mask[m*cols : (m+1)*cols]
			}
			m := math.Inf(-1)
			for j, v := range xr {
				zj := scale * float64(v)
				if mr != nil {
					zj += float64(mr[j])
				}
				z[j] = zj
				if zj > m {
					m = zj
				}
			}
			if math.IsInf(m, -1) {
				clear(yr)
				continue
			}
			var sum float64
			for j, zj := range z {
				e := math.Exp(zj - m)
				z[j] = e
				sum += e
			}
			inv := 1 / sum
			for j, e := range z {
				yr[j] = float32(e * inv)
			}
		}
	})
}
