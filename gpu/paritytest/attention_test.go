package paritytest

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
)

// TestAttentionReferenceGradient checks the float64 backward reference
// against central differences of the forward reference, for the loss
// sum(O * DO), with a mask, causal cross shapes and a fully masked batch.
func TestAttentionReferenceGradient(t *testing.T) {
	for _, c := range []attnCfg{
		{AttentionShape: gpu.AttentionShape{B: 2, H: 2, Tq: 3, Tk: 5, D: 4}, Mask: padMask(-3, 5, 2)},
		{AttentionShape: gpu.AttentionShape{B: 1, H: 2, Tq: 4, Tk: 6, D: 3, Causal: true, Scale: 0.7}},
		{AttentionShape: gpu.AttentionShape{B: 2, H: 1, Tq: 5, Tk: 3, D: 2, Causal: true}, Mask: padMask(math.Inf(-1), 3, 0)},
		{AttentionShape: gpu.AttentionShape{B: 2, H: 2, Tq: 4, Tk: 4, D: 3}, Fused: true},
	} {
		g := geom(c)
		s := g.s
		r := rand.New(rand.NewPCG(1, 2))
		rnd := func(n int) []float64 {
			x := make([]float64, n)
			for i := range x {
				x[i] = r.NormFloat64()
			}
			return x
		}
		q := rnd(g.lenQ)
		k, v := q, q
		if !c.Fused {
			k, v = rnd(g.lenK), rnd(g.lenV)
		}
		var mask []float64
		if c.Mask != nil {
			mask = make([]float64, s.B*s.Tk)
			for i := range mask {
				mask[i] = c.Mask(i/s.Tk, i%s.Tk)
			}
		}
		do := rnd(g.lenO)
		o := make([]float64, g.lenO)
		lse := make([]float64, s.B*s.H*s.Tq)
		refAttention(g, q, k, v, mask, o, lse)
		loss := func() float64 {
			out := make([]float64, g.lenO)
			refAttention(g, q, k, v, mask, out, nil)
			var l float64
			for i := range out {
				l += out[i] * do[i]
			}
			return l
		}
		dq := make([]float64, g.lenQ)
		dk, dv := dq, dq
		if !c.Fused {
			dk, dv = make([]float64, g.lenK), make([]float64, g.lenV)
		}
		refAttentionBackward(g, q, k, v, o, do, lse, mask, dq, dk, dv)
		check := func(name string, x, grad []float64, lay attnLay, tokens int) {
			for b := 0; b < s.B; b++ {
				for tk := 0; tk < tokens; tk++ {
					for h := 0; h < s.H; h++ {
						for d := 0; d < s.D; d++ {
							i := lay.at(b, tk, h, d, s.D)
							const eps = 1e-6
							x0 := x[i]
							x[i] = x0 + eps
							lp := loss()
							x[i] = x0 - eps
							lm := loss()
							x[i] = x0
							num := (lp - lm) / (2 * eps)
							if math.Abs(num-grad[i]) > 1e-6*max(1, math.Abs(num)) {
								t.Errorf("%v: d%s[%d,%d,%d,%d] = %.9g, numeric %.9g", c, name, b, tk, h, d, grad[i], num)
							}
						}
					}
				}
			}
		}
		check("Q", q, dq, g.q, s.Tq)
		check("K", k, dk, g.k, s.Tk)
		check("V", v, dv, g.v, s.Tk)
	}
}
