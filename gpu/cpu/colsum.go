package cpu

import (
	"blip/gpu"
)

func init() {
	twins["colsum"] = func(c gpu.Call) { columnSum(c.(gpu.ColumnSum)) }
}

// columnSum: Y[c] (+)= sum over rows of X[r, c], in float64 and rounded
// once; Scratch receives the partial sums of each block of gpu.ColumnBlock
// rows, as the shader leaves it.
func columnSum(s gpu.ColumnSum) {
	x := f32(s.X)
	y := f32(s.Y)[:s.Cols]
	colReduce(s.Rows, s.Cols, f32(s.Scratch), func(r, c0, c1 int, acc []float64) {
		for j, v := range x[r*s.Cols+c0 : r*s.Cols+c1] {
			acc[j] += float64(v)
		}
	}, func(c int, sum float64) {
		if s.Accumulate {
			sum += float64(y[c])
		}
		y[c] = float32(sum)
	})
}

// colReduce runs a column reduction over a (rows, cols) matrix: for column
// ranges [c0, c1) in parallel, add(r, c0, c1, acc) adds row r's terms to
// acc (float64, indexed from c0) for r in order; the sum of each block of
// gpu.ColumnBlock rows goes to scratch (when rows > gpu.ColumnBlock and
// scratch is set, as in the two-stage shaders) and done(c, sum) gets each
// column's total.
func colReduce(rows, cols int, scratch []float32, add func(r, c0, c1 int, acc []float64), done func(c int, sum float64)) {
	if rows <= gpu.ColumnBlock {
		scratch = nil
	}
	parallel(cols, int64(rows)*int64(cols)*2, func(c0, c1 int) {
		acc := make([]float64, c1-c0)
		tot := make([]float64, c1-c0)
		for r := 0; r < rows; r++ {
			add(r, c0, c1, acc)
			if r%gpu.ColumnBlock == gpu.ColumnBlock-1 || r == rows-1 {
				p := r / gpu.ColumnBlock
				for j, s := range acc {
					if scratch != nil {
						scratch[p*cols+c0+j] = float32(s)
					}
					tot[j] += s
					acc[j] = 0
				}
			}
		}
		for j, s := range tot {
			done(c0+j, s)
		}
	})
}
