package cpu

import (
	"math"

	"blip/gpu"
)

// attnQueryBlock is the number of query rows a worker scores at once: its
// (block, Tk) score buffer is the only scratch, so memory stays linear in T.
const attnQueryBlock = 64

// attentionBlocked is attention's fast path for long sequences: per (batch,
// head) and block of queries, the scores are one SGEMM (Q K^T), the softmax
// runs row by row, and the output is a second SGEMM (P V), so the time goes
// to the packed SGEMM kernel instead of scalar dot products. Same masking,
// causality and LSE rules as attention.
func attentionBlocked(a gpu.Attention) {
	s := a.AttentionShape
	ls := s.Layouts()
	q, k, v, o := newAttnTensor(a.Q, ls[0], s.D), newAttnTensor(a.K, ls[1], s.D), newAttnTensor(a.V, ls[2], s.D), newAttnTensor(a.O, ls[3], s.D)
	mask, lse := f32(a.Mask), f32(a.LSE)
	scale := s.ScaleValue()
	work := int64(s.B) * int64(s.H) * int64(s.Tq) * int64(s.Tk) * int64(s.D)
	parallel(s.B*s.H, work, func(lo, hi int) {
		z := make([]float32, attnQueryBlock*s.Tk) // (rows, Tk) scores, then probabilities
		inv := make([]float32, attnQueryBlock)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/s.H, bh%s.H
			kb := k.x[b*k.batch+h*s.D:]
			vb := v.x[b*v.batch+h*s.D:]
			for i0 := 0; i0 < s.Tq; i0 += attnQueryBlock {
				rows := min(attnQueryBlock, s.Tq-i0)
				qb := q.x[b*q.batch+i0*q.tok+h*s.D:]
				sgemm(false, true, rows, s.Tk, s.D, scale, qb, q.tok, kb, k.tok, 0, z, s.Tk) // (rows, Tk) = Q K^T * scale
				for r := 0; r < rows; r++ {
					i := i0 + r
					zr := z[r*s.Tk : (r+1)*s.Tk]
					n := visibleKeys(s, i)
					m := float32(math.Inf(-1))
					for j := 0; j < n; j++ {
						if mask != nil {
							zr[j] += mask[b*s.Tk+j]
						}
						m = max(m, zr[j])
					}
					if n == 0 || math.IsInf(float64(m), -1) {
						clear(zr)
						inv[r] = 0
						if lse != nil {
							lse[bh*s.Tq+i] = float32(math.Inf(1))
						}
						continue
					}
					var sum float64
					for j := 0; j < n; j++ {
						p := expf(zr[j] - m)
						zr[j] = p
						sum += float64(p)
					}
					clear(zr[n:])
					inv[r] = float32(1 / sum)
					if lse != nil {
						lse[bh*s.Tq+i] = float32(float64(m) + math.Log(sum))
					}
				}
				ob := o.x[b*o.batch+i0*o.tok+h*s.D:]
				sgemm(false, false, rows, s.D, s.Tk, 1, z, s.Tk, vb, v.tok, 0, ob, o.tok) // (rows, D) = P V
				for r := 0; r < rows; r++ {
					orow := ob[r*o.tok : r*o.tok+s.D]
					for d := range orow {
						orow[d] *= inv[r]
					}
				}
			}
		}
	})
}
