package cpu

import (
	"math"

	"blip/gpu"
)

func init() {
	twins["adamw"] = func(c gpu.Call) { adamW(c.(gpu.AdamW)) }
}

// adamW: one AdamW step per element in float64 from the f32 state and the
// f32 scalars of AdamW.Scalars, each of Param, M and V rounded once.
func adamW(a gpu.AdamW) {
	n := a.N
	p, g, m, v := f32(a.Param)[:n], f32(a.Grad)[:n], f32(a.M)[:n], f32(a.V)[:n]
	decay, step, bc2sqrt, gscale := a.Scalars()
	b1, b2, eps := float64(a.Beta1), float64(a.Beta2), float64(a.Eps)
	parallel(n, int64(n)*8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := float64(g[i]) * float64(gscale)
			mi := b1*float64(m[i]) + (1-b1)*gi
			vi := b2*float64(v[i]) + (1-b2)*gi*gi
			// Round the moments first: the update uses the stored values,
			// as the shader does.
			m[i], v[i] = float32(mi), float32(vi)
			mi, vi = float64(m[i]), float64(v[i])
			pi := float64(p[i]) * float64(decay)
			pi -= float64(step) * mi / (math.Sqrt(vi)/float64(bc2sqrt) + eps)
			p[i] = float32(pi)
		}
	})
}
