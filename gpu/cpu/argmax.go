package cpu

import (
	"math"

	"blip/gpu"
)

// argMax: Y[r] = the column of the largest value of row r; ties go to the
// lowest index, NaNs are ignored, a row of only NaNs gives 0. NLL, where
// set, as crossEntropy computes the loss at that column (eps 0).
func argMax(a gpu.ArgMax) {
	rows, cols := a.Rows, a.Cols
	x, y, nll := f32(a.X), i32(a.Y), f32(a.NLL)
	parallel(rows, int64(rows)*int64(cols), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			xr := x[r*cols : (r+1)*cols]
			best := -1
			var bv float32
			for j, v := range xr {
				if v != v {
					continue
				}
				if best < 0 || v > bv {
					best, bv = j, v
				}
			}
			y[r] = int32(max(best, 0))
			if nll != nil {
				m, s := rowMaxSumExp(xr)
				nll[r] = float32(m + math.Log(s) - float64(xr[y[r]]))
			}
		}
	})
}
