package cpu

import (
	"blip/gpu"
)

// argMax: Y[r] = the column of the largest value of row r; ties go to the
// lowest index, NaNs are ignored, a row of only NaNs gives 0.
func argMax(a gpu.ArgMax) {
	rows, cols := a.Rows, a.Cols
	x, y := f32(a.X), i32(a.Y)
	parallel(rows, int64(rows)*int64(cols), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			best := -1
			var bv float32
			for j, v := range x[r*cols : (r+1)*cols] {
				if v != v {
					continue
				}
				if best < 0 || v > bv {
					best, bv = j, v
				}
			}
			y[r] = int32(max(best, 0))
		}
	})
}
