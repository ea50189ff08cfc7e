package cpu

import (
	"blip/gpu"
)

// reduce: Y[r] = op(X[r, 0:Cols]). Sums accumulate in float64 and are
// rounded once; Max propagates NaN (a row holding a NaN gives NaN).
func reduce(c gpu.Reduce) {
	rows, cols := c.Rows, c.Cols
	x, y := f32(c.X), f32(c.Y)
	parallel(rows, int64(rows)*int64(cols), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			row := x[r*cols : (r+1)*cols]
			switch c.Op {
			case gpu.ReduceSum, gpu.ReduceMean:
				var s float64
				for _, v := range row {
					s += float64(v)
				}
				if c.Op == gpu.ReduceMean {
					s /= float64(cols)
				}
				y[r] = float32(s)
			case gpu.ReduceMax:
				// Once m is NaN it stays NaN: v > NaN is false.
				m := row[0]
				for _, v := range row[1:] {
					if v > m || v != v {
						m = v
					}
				}
				y[r] = m
			}
		}
	})
}
