package cpu

import (
	"blip/gpu"
)

func init() {
	twins["layernorm_bwd"] = func(c gpu.Call) { layerNormBackward(c.(gpu.LayerNormBackward)) }
}

// layerNormBackward: DX per row in float64 from the f32 Mean and Rstd; DGamma
// and DBeta column sums in float64, added to the existing values, with the
// partial sums left in Scratch as the shader leaves them. DX may alias DY.
func layerNormBackward(l gpu.LayerNormBackward) {
	rows, cols := l.Rows, l.Cols
	x, dy, dx := f32(l.X), f32(l.DY), f32(l.DX)
	gamma := f32(l.Gamma)[:cols]
	means, rstds := f32(l.Mean), f32(l.Rstd)
	// Parameter gradients first: DX may overwrite DY. Scratch gets the
	// DGamma partial sums, then the DBeta ones.
	if l.DGamma.Buf != nil || l.DBeta.Buf != nil {
		dg, db := f32(l.DGamma), f32(l.DBeta)
		var sg, sb []float32
		if sc := f32(l.Scratch); sc != nil {
			n := gpu.ColumnScratchLen(rows, cols)
			sg, sb = sc[:n], sc[n:2*n]
		}
		if dg != nil {
			colReduce(rows, cols, sg, func(r, c0, c1 int, acc []float64) {
				m, rs := float64(means[r]), float64(rstds[r])
				xr, dyr := x[r*cols+c0:r*cols+c1], dy[r*cols+c0:r*cols+c1]
				for j, v := range dyr {
					acc[j] += float64(v) * (float64(xr[j]) - m) * rs
				}
			}, func(c int, sum float64) {
				dg[c] = float32(float64(dg[c]) + sum)
			})
		}
		if db != nil {
			colReduce(rows, cols, sb, func(r, c0, c1 int, acc []float64) {
				for j, v := range dy[r*cols+c0 : r*cols+c1] {
					acc[j] += float64(v)
				}
			}, func(c int, sum float64) {
				db[c] = float32(float64(db[c]) + sum)
			})
		}
	}
	parallel(rows, int64(rows)*int64(cols)*3, func(r0, r1 int) {
		g := make([]float64, cols)
		xh := make([]float64, cols)
		for r := r0; r < r1; r++ {
			m, rs := float64(means[r]), float64(rstds[r])
			xr, dyr, dxr := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
			var a, b float64
			for j, v := range xr {
				xh[j] = (float64(v) - m) * rs
				g[j] = float64(dyr[j]) * float64(gamma[j])
				a += g[j]
				b += g[j] * xh[j]
			}
			a /= float64(cols)
			b /= float64(cols)
			for j := range dxr {
				dxr[j] = float32(rs * (g[j] - a - xh[j]*b))
			}
		}
	})
}
