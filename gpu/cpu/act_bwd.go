package cpu

import (
	"math"

	"blip/gpu"
)

func init() {
	twins["act_bwd"] = func(c gpu.Call) { actBackward(c.(gpu.ActBackward)) }
}

// actBackward: DX = DY * act'(X) in float64, rounded once; with DBias, the
// column sums of the rounded DX are added to DBias (their block partial sums
// left in Scratch). DX may alias DY or X.
func actBackward(a gpu.ActBackward) {
	rows, cols := a.Rows, a.Cols
	n := rows * cols
	x, dy, dx := f32(a.X), f32(a.DY)[:n], f32(a.DX)[:n]
	parallel(n, int64(n)*8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d := 1.0
			if a.Act != gpu.ActNone {
				d = actDeriv(a.Act, float64(x[i]), a.FromOutput)
			}
			dx[i] = float32(float64(dy[i]) * d)
		}
	})
	if a.DBias.Buf != nil {
		db := f32(a.DBias)
		colReduce(rows, cols, f32(a.Scratch), func(r, c0, c1 int, acc []float64) {
			for j, v := range dx[r*cols+c0 : r*cols+c1] {
				acc[j] += float64(v)
			}
		}, func(c int, sum float64) {
			db[c] = float32(float64(db[c]) + sum)
		})
	}
}

// actDeriv is act'(x), or for fromOutput act' in terms of the output x.
func actDeriv(act gpu.Act, x float64, fromOutput bool) float64 {
	switch {
	case act == gpu.ActTanh && fromOutput:
		return 1 - x*x
	case act == gpu.ActTanh:
		t := math.Tanh(x)
		return 1 - t*t
	case act == gpu.ActGELU:
		// Phi(x) + x*phi(x); the second term is 0 where phi underflows
		// (also for x = ±Inf). Phi through gelu's erf32 (absolute error
		// below 2e-7, against float32 gradients) at half the cost of
		// math.Erfc, which dominated the CPU backward of GELU layers.
		cdf := 0.5 * (1 + erf32(x*(1/math.Sqrt2)))
		pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
		if pdf == 0 {
			return cdf
		}
		return cdf + x*pdf
	}
	return 1
}
