package cpu

import (
	"math"

	"blip/gpu"
)

// layerNorm: Y = (X - mean) * rstd * Gamma + Beta per row, with the biased
// variance and rstd = 1/sqrt(var + Eps); two passes in float64. Mean and
// Rstd are written when set. Y may alias X. With R the row is the fp32 sum
// X + R (what a Binary add would have stored), written to S when set.
func layerNorm(l gpu.LayerNorm) {
	rows, cols := l.Rows, l.Cols
	x, y := f32(l.X), f32(l.Y)
	res, sum := f32(l.R), f32(l.S)
	gamma, beta := f32(l.Gamma)[:cols], f32(l.Beta)[:cols]
	means, rstds := f32(l.Mean), f32(l.Rstd)
	eps := float64(l.Eps)
	parallel(rows, int64(rows)*int64(cols)*2, func(r0, r1 int) {
		var z []float32
		if res != nil {
			z = make([]float32, cols)
		}
		for r := r0; r < r1; r++ {
			xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			if res != nil {
				for j, v := range res[r*cols : (r+1)*cols] {
					z[j] = xr[j] + v
				}
				if sum != nil {
					copy(sum[r*cols:(r+1)*cols], z)
				}
				xr = z
			}
			var s float64
			for _, v := range xr {
				s += float64(v)
			}
			mean := s / float64(cols)
			var ss float64
			for _, v := range xr {
				d := float64(v) - mean
				ss += d * d
			}
			rstd := 1 / math.Sqrt(ss/float64(cols)+eps)
			for j, v := range xr {
				yr[j] = float32((float64(v)-mean)*rstd*float64(gamma[j]) + float64(beta[j]))
			}
			if means != nil {
				means[r] = float32(mean)
			}
			if rstds != nil {
				rstds[r] = float32(rstd)
			}
		}
	})
}
