package cpu

import (
	"math"

	"blip/gpu"
)

// unary: Y[i] = op(X[i]) for i < N; Y may alias X. Copy moves raw words, so
// it works for i32 and keeps NaN payloads.
func unary(u gpu.Unary) {
	n := u.N
	if u.Op == gpu.UnaryCopy {
		x, y := u32(u.X)[:n], u32(u.Y)[:n]
		if &x[0] != &y[0] {
			copy(y, x)
		}
		return
	}
	x, y := f32(u.X)[:n], f32(u.Y)[:n]
	work := int64(n)
	if u.Op != gpu.UnaryScale {
		work *= 8 // transcendental functions
	}
	parallel(n, work, func(lo, hi int) {
		xs, ys := x[lo:hi], y[lo:hi]
		switch u.Op {
		case gpu.UnaryScale:
			a := u.Alpha
			for i, v := range xs {
				ys[i] = a * v
			}
		case gpu.UnaryGELU:
			for i, v := range xs {
				ys[i] = gelu(v)
			}
		case gpu.UnaryTanh:
			for i, v := range xs {
				ys[i] = float32(math.Tanh(float64(v)))
			}
		case gpu.UnaryExp:
			for i, v := range xs {
				ys[i] = float32(math.Exp(float64(v)))
			}
		}
	})
}
