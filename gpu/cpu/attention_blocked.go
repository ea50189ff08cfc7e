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
// causality, LSE and F16 rules as attention.
func attentionBlocked(a gpu.Attention) {
	s := a.AttentionShape
	q, k, v, o := attnTensors(a)
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
					var mrow []float32
					if mask != nil {
						mrow = mask[b*s.Tk : b*s.Tk+n]
					}
					m := maskedMax(zr[:n], mrow)
					if n == 0 || math.IsInf(float64(m), -1) {
						clear(zr)
						inv[r] = 0
						if lse != nil {
							lse[bh*s.Tq+i] = float32(math.Inf(1))
						}
						continue
					}
					sum := expShiftSum(zr[:n], m)
					roundP(a.F16, zr[:n])
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

// maskedMax adds mask (nil: none) to z and returns the maximum, NaN if any
// element is NaN (as max would give). Four independent maxima keep the
// loop free of a serial dependency.
func maskedMax(z, mask []float32) float32 {
	if mask != nil {
		mask = mask[:len(z)]
		for j, v := range mask {
			z[j] += v
		}
	}
	inf := float32(math.Inf(-1))
	m0, m1, m2, m3 := inf, inf, inf, inf
	nan := false
	j := 0
	for ; j+4 <= len(z); j += 4 {
		v := z[j : j+4 : j+4]
		if v[0] > m0 {
			m0 = v[0]
		}
		if v[1] > m1 {
			m1 = v[1]
		}
		if v[2] > m2 {
			m2 = v[2]
		}
		if v[3] > m3 {
			m3 = v[3]
		}
		nan = nan || v[0] != v[0] || v[1] != v[1] || v[2] != v[2] || v[3] != v[3]
	}
	for ; j < len(z); j++ {
		if z[j] > m0 {
			m0 = z[j]
		}
		nan = nan || z[j] != z[j]
	}
	if nan {
		return float32(math.NaN())
	}
	return max(max(m0, m1), max(m2, m3))
}

// expShiftSum replaces z by exp(z - m) and returns the sum in float64, in
// four interleaved partial sums.
func expShiftSum(z []float32, m float32) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(z); j += 4 {
		v := z[j : j+4 : j+4]
		p0, p1, p2, p3 := expf(v[0]-m), expf(v[1]-m), expf(v[2]-m), expf(v[3]-m)
		v[0], v[1], v[2], v[3] = p0, p1, p2, p3
		s0 += float64(p0)
		s1 += float64(p1)
		s2 += float64(p2)
		s3 += float64(p3)
	}
	for ; j < len(z); j++ {
		p := expf(z[j] - m)
		z[j] = p
		s0 += float64(p)
	}
	return (s0 + s1) + (s2 + s3)
}
