package cpu

import (
	"math"

	"blip/gpu"
)

// attentionBackward: the CPU twin of shaders/attention_bwd.comp. Per (batch,
// head) pair, one query row at a time: the probabilities are recomputed from
// LSE (P = exp(s - LSE), 0 where LSE is +Inf), Delta = DO . O, and DQ, DK, DV
// accumulate in fp32 in a fixed order (deterministic). A worker keeps one row
// of Tk scores.
//
// With F16 the products read f16-rounded copies of Q, K, V and DO (memory
// linear in the tokens) while Delta reads DO and O as they are, and P and dS
// are rounded where they become a product's operand, after dS took the
// unrounded P (gpu.AttentionBackward.F16). Without it nothing is rounded.
func attentionBackward(a gpu.AttentionBackward) {
	s := a.AttentionShape
	ls := s.Layouts()
	q, k, v, o := newAttnTensor(a.Q, ls[0], s.D), newAttnTensor(a.K, ls[1], s.D), newAttnTensor(a.V, ls[2], s.D), newAttnTensor(a.O, ls[3], s.D)
	do := newAttnTensor(a.DO, ls[3], s.D)
	dop := do // DO as the products read it
	if a.F16 {
		q, k, v, dop = q.roundF16(), k.roundF16(), v.roundF16(), do.roundF16()
	}
	dq, dk, dv := newAttnTensor(a.DQ, ls[0], s.D), newAttnTensor(a.DK, ls[1], s.D), newAttnTensor(a.DV, ls[2], s.D)
	mask, lse := f32(a.Mask), f32(a.LSE)
	scale := s.ScaleValue()
	work := 3 * int64(s.B) * int64(s.H) * int64(s.Tq) * int64(s.Tk) * int64(s.D)
	parallel(s.B*s.H, work, func(lo, hi int) {
		z := make([]float32, s.Tk)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/s.H, bh%s.H
			for j := 0; j < s.Tk; j++ {
				clear(dk.row(b, j, h))
				clear(dv.row(b, j, h))
			}
			for i := 0; i < s.Tq; i++ {
				dqrow := dq.row(b, i, h)
				clear(dqrow)
				l := lse[bh*s.Tq+i]
				if math.IsInf(float64(l), 1) {
					continue // no visible key: P = 0
				}
				qrow, dorow := q.row(b, i, h), dop.row(b, i, h)
				n, _ := scores(s, k, mask, qrow, b, h, i, scale, z)
				delta := dot32(do.row(b, i, h), o.row(b, i, h))
				for j := 0; j < n; j++ {
					p := expf(z[j] - l)
					if p == 0 {
						continue
					}
					pv := p // P as DV's product reads it
					if a.F16 {
						pv = gpu.Round(gpu.F16, p)
					}
					axpy32(pv, dorow, dv.row(b, j, h))
					ds := p * (dot32(dorow, v.row(b, j, h)) - delta)
					if a.F16 {
						ds = gpu.Round(gpu.F16, ds)
					}
					axpy32(scale*ds, k.row(b, j, h), dqrow)
					axpy32(scale*ds, qrow, dk.row(b, j, h))
				}
			}
		}
	})
}
