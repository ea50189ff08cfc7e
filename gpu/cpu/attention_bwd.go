package cpu

import (
	"math"

	"blip/gpu"
)

// bwdTensors are a backward call's tensors, mask and LSE; under F16, Q, K,
// V and dop (DO as the products read it) are f16-rounded copies.
type bwdTensors struct {
	q, k, v, o, do, dop, dq, dk, dv attnTensor
	mask, lse                       []float32
}

func newBwdTensors(a gpu.AttentionBackward) bwdTensors {
	s := a.AttentionShape
	ls := s.Layouts()
	t := bwdTensors{q: newAttnTensor(a.Q, ls[0], s.D), k: newAttnTensor(a.K, ls[1], s.D), v: newAttnTensor(a.V, ls[2], s.D),
		o: newAttnTensor(a.O, ls[3], s.D), do: newAttnTensor(a.DO, ls[3], s.D),
		dq: newAttnTensor(a.DQ, ls[0], s.D), dk: newAttnTensor(a.DK, ls[1], s.D), dv: newAttnTensor(a.DV, ls[2], s.D),
		mask: f32(a.Mask), lse: f32(a.LSE)}
	t.dop = t.do
	if a.F16 {
		t.q, t.k, t.v, t.dop = t.q.roundF16(), t.k.roundF16(), t.v.roundF16(), t.do.roundF16()
	}
	return t
}

// attentionBackward: the CPU twin of shaders/attention_bwd.comp. Per (batch,
// head) pair, one query row at a time: the probabilities are recomputed from
// LSE (P = exp(s - LSE), 0 where LSE is +Inf), Delta = DO . O, and DQ, DK, DV
// accumulate in fp32 in a fixed order (deterministic). A worker keeps one row
// of Tk scores. Past minKernelRows queries and keys it is
// attentionBackwardBlocked, on the SGEMM kernel.
//
// With F16 the products read f16-rounded copies of Q, K, V and DO (memory
// linear in the tokens) while Delta reads DO and O as they are, and P and dS
// are rounded where they become a product's operand, after dS took the
// unrounded P (gpu.AttentionBackward.F16). Without it nothing is rounded.
func attentionBackward(a gpu.AttentionBackward) {
	s := a.AttentionShape
	t := newBwdTensors(a)
	if s.Tq >= minKernelRows && s.Tk >= minKernelRows {
		attentionBackwardBlocked(a, t)
		return
	}
	q, k, v, o, do, dop, dq, dk, dv := t.q, t.k, t.v, t.o, t.do, t.dop, t.dq, t.dk, t.dv
	mask, lse := t.mask, t.lse
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

// attentionBackwardBlocked is attentionBackward's fast path for long
// sequences, as attentionBlocked is the forward's: per (batch, head) and
// block of attnQueryBlock query rows, the scores (Q K^T) and dP = DO V^T
// are SGEMMs, P = exp(s - LSE) and dS = P (dP - Delta) are formed row by
// row, and DV += P^T DO, DQ = dS K and DK += dS^T Q are SGEMMs, so the time
// goes to the packed kernel instead of row-by-row dot products and axpys.
// Same masking, causality, empty rows and F16 rounding; two (block, Tk)
// buffers per worker are the only scratch.
func attentionBackwardBlocked(a gpu.AttentionBackward, t bwdTensors) {
	s, scale := a.AttentionShape, a.ScaleValue()
	work := 5 * int64(s.B) * int64(s.H) * int64(s.Tq) * int64(s.Tk) * int64(s.D)
	parallel(s.B*s.H, work, func(lo, hi int) {
		p := make([]float32, attnQueryBlock*s.Tk)  // (rows, Tk) scores, then P
		ds := make([]float32, attnQueryBlock*s.Tk) // (rows, Tk) dP, then dS
		for bh := lo; bh < hi; bh++ {
			b, h := bh/s.H, bh%s.H
			for j := 0; j < s.Tk; j++ {
				clear(t.dk.row(b, j, h))
				clear(t.dv.row(b, j, h))
			}
			kb, vb := t.k.x[b*t.k.batch+h*s.D:], t.v.x[b*t.v.batch+h*s.D:]
			dkb, dvb := t.dk.x[b*t.dk.batch+h*s.D:], t.dv.x[b*t.dv.batch+h*s.D:]
			for i0 := 0; i0 < s.Tq; i0 += attnQueryBlock {
				rows := min(attnQueryBlock, s.Tq-i0)
				qb := t.q.x[b*t.q.batch+i0*t.q.tok+h*s.D:]
				dob := t.dop.x[b*t.dop.batch+i0*t.dop.tok+h*s.D:]
				sgemm(false, true, rows, s.Tk, s.D, scale, qb, t.q.tok, kb, t.k.tok, 0, p, s.Tk) // scale Q K^T
				sgemm(false, true, rows, s.Tk, s.D, 1, dob, t.dop.tok, vb, t.v.tok, 0, ds, s.Tk) // dP = DO V^T
				for r := 0; r < rows; r++ {
					i := i0 + r
					pr, dr := p[r*s.Tk:(r+1)*s.Tk], ds[r*s.Tk:(r+1)*s.Tk]
					l := t.lse[bh*s.Tq+i]
					n := visibleKeys(s, i)
					if math.IsInf(float64(l), 1) {
						n = 0 // no visible key: P = 0
					}
					delta := dot32(t.do.row(b, i, h), t.o.row(b, i, h))
					for j := 0; j < n; j++ {
						z := pr[j]
						if t.mask != nil {
							z += t.mask[b*s.Tk+j]
						}
						pj := expf(z - l)
						d := pj * (dr[j] - delta)
						if a.F16 {
							pj, d = gpu.Round(gpu.F16, pj), gpu.Round(gpu.F16, d)
						}
						pr[j], dr[j] = pj, d
					}
					clear(pr[n:])
					clear(dr[n:])
				}
				sgemm(true, false, s.Tk, s.D, rows, 1, p, s.Tk, dob, t.dop.tok, 1, dvb, t.dv.tok) // DV += P^T DO
				dqb := t.dq.x[b*t.dq.batch+i0*t.dq.tok+h*s.D:]
				sgemm(false, false, rows, s.D, s.Tk, scale, ds, s.Tk, kb, t.k.tok, 0, dqb, t.dq.tok) // DQ = scale dS K
				sgemm(true, false, s.Tk, s.D, rows, scale, ds, s.Tk, qb, t.q.tok, 1, dkb, t.dk.tok)  // DK += scale dS^T Q
			}
		}
	})
}
