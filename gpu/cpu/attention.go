package cpu

import (
	"math"

	"blip/gpu"
)

// attention: the CPU twin of shaders/attention.comp. Each (batch, head) pair
// is one unit of parallel work; a worker keeps one row of Tk scores, so
// nothing proportional to Tq*Tk is allocated. fp32 dot products and sums
// with a max-subtracted softmax (exp in float64, rounded once).
func init() {
	twins["attention"] = func(c gpu.Call) { attention(c.(gpu.Attention)) }
	twins["attention_bwd"] = func(c gpu.Call) { attentionBackward(c.(gpu.AttentionBackward)) }
}

// attnTensor addresses one (B, T, H, D) tensor of an attention call.
type attnTensor struct {
	x          []float32
	tok, batch int
	d          int
}

func newAttnTensor(v gpu.View, l gpu.AttentionLayout, d int) attnTensor {
	return attnTensor{x: f32(v), tok: int(l.Tok), batch: int(l.Batch), d: d}
}

// attnTensors returns Q, K, V and O of a; with a.F16, Q, K and V are
// copies rounded to f16 (memory linear in the tokens, not Tq*Tk), what the
// half-precision products read.
func attnTensors(a gpu.Attention) (q, k, v, o attnTensor) {
	s := a.AttentionShape
	ls := s.Layouts()
	q, k, v, o = newAttnTensor(a.Q, ls[0], s.D), newAttnTensor(a.K, ls[1], s.D), newAttnTensor(a.V, ls[2], s.D), newAttnTensor(a.O, ls[3], s.D)
	if a.F16 {
		q, k, v = q.roundF16(), k.roundF16(), v.roundF16()
	}
	return q, k, v, o
}

// roundF16 is a copy of t with every element rounded to f16.
func (t attnTensor) roundF16() attnTensor {
	y := make([]float32, len(t.x))
	parallel(len(y), int64(len(y))*8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = gpu.Round(gpu.F16, t.x[i])
		}
	})
	t.x = y
	return t
}

// roundP rounds probabilities to f16 in place where the call asks for
// half-precision products (after their fp32 sum was taken).
func roundP(f16 bool, p []float32) {
	if f16 {
		for j, x := range p {
			p[j] = gpu.Round(gpu.F16, x)
		}
	}
}

// row is the D values of token t of head h in batch b.
func (t attnTensor) row(b, i, h int) []float32 {
	o := b*t.batch + i*t.tok + h*t.d
	return t.x[o : o+t.d : o+t.d]
}

func dot32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy32 is y += a*x.
func axpy32(a float32, x, y []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

// visibleKeys is the number of keys query i sees (keys 0..n-1).
func visibleKeys(s gpu.AttentionShape, i int) int {
	if !s.Causal {
		return s.Tk
	}
	return max(0, min(s.Tk, i+s.Tk-s.Tq+1))
}

// scores fills z[j] = scale*q.k_j + mask[j] for the visible keys and returns
// how many there are and their maximum.
func scores(s gpu.AttentionShape, k attnTensor, mask []float32, q []float32, b, h, i int, scale float32, z []float32) (int, float32) {
	n := visibleKeys(s, i)
	m := float32(math.Inf(-1))
	for j := 0; j < n; j++ {
		v := scale * dot32(q, k.row(b, j, h))
		if mask != nil {
			v += mask[b*s.Tk+j]
		}
		z[j] = v
		if v > m {
			m = v
		}
	}
	return n, m
}

func attention(a gpu.Attention) {
	s := a.AttentionShape
	if s.Tq >= minKernelRows && s.Tk >= minKernelRows {
		attentionBlocked(a)
		return
	}
	q, k, v, o := attnTensors(a)
	mask, lse := f32(a.Mask), f32(a.LSE)
	scale := s.ScaleValue()
	work := int64(s.B) * int64(s.H) * int64(s.Tq) * int64(s.Tk) * int64(s.D)
	parallel(s.B*s.H, work, func(lo, hi int) {
		z := make([]float32, s.Tk)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/s.H, bh%s.H
			for i := 0; i < s.Tq; i++ {
				orow := o.row(b, i, h)
				clear(orow)
				n, m := scores(s, k, mask, q.row(b, i, h), b, h, i, scale, z)
				if math.IsInf(float64(m), -1) || n == 0 {
					if lse != nil {
						lse[bh*s.Tq+i] = float32(math.Inf(1))
					}
					continue
				}
				var sum float64
				for j := 0; j < n; j++ {
					p := expf(z[j] - m)
					sum += float64(p)
					if a.F16 {
						p = gpu.Round(gpu.F16, p)
					}
					if p != 0 {
						axpy32(p, v.row(b, j, h), orow)
					}
				}
				inv := float32(1 / sum)
				for d := range orow {
					orow[d] *= inv
				}
				if lse != nil {
					lse[bh*s.Tq+i] = float32(float64(m) + math.Log(sum))
				}
			}
		}
	})
}
