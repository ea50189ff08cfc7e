package graph

import (
	"math"
)

// Float64 reference forwards for the gradient checks, written from the op
// docs with naive loops, independent of the kernels and of each other.

func refGELU(x float64) float64 { return x / 2 * (1 + math.Erf(x/math.Sqrt2)) }

func refMap(x []float64, f func(float64) float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = f(v)
	}
	return y
}

// refLinear: x (rows, in) @ w (out, in)^T + b, then act.
func refLinear(x, w, b []float64, in, out int, act func(float64) float64) []float64 {
	rows := len(x) / in
	y := make([]float64, rows*out)
	for r := range rows {
		for o := range out {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for i := range in {
				s += x[r*in+i] * w[o*in+i]
			}
			if act != nil {
				s = act(s)
			}
			y[r*out+o] = s
		}
	}
	return y
}

// refMatMul: batch products of op(a) (m, k) and op(b) (k, n); a stride 0
// shares a (likewise b).
func refMatMul(a, b []float64, batch, m, n, k int, ta, tb bool, sa, sb int) []float64 {
	y := make([]float64, batch*m*n)
	for bi := range batch {
		A, B := a[bi*sa:], b[bi*sb:]
		for i := range m {
			for j := range n {
				s := 0.0
				for l := range k {
					av := A[i*k+l]
					if ta {
						av = A[l*m+i]
					}
					bv := B[l*n+j]
					if tb {
						bv = B[j*k+l]
					}
					s += av * bv
				}
				y[bi*m*n+i*n+j] = s
			}
		}
	}
	return y
}

// refBroadcast: a op b with b repeating over a.
func refBroadcast(a, b []float64, op func(x, y float64) float64) []float64 {
	y := make([]float64, len(a))
	for i := range a {
		y[i] = op(a[i], b[i%len(b)])
	}
	return y
}

func refLayerNorm(x, g, b []float64, cols int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/cols; r++ {
		row := x[r*cols : (r+1)*cols]
		mean := 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(cols)
		v2 := 0.0
		for _, v := range row {
			v2 += (v - mean) * (v - mean)
		}
		rstd := 1 / math.Sqrt(v2/float64(cols)+eps)
		for j, v := range row {
			y[r*cols+j] = (v-mean)*rstd*g[j] + b[j]
		}
	}
	return y
}

// refSoftmaxRow: softmax of z in place; all -Inf gives zeros.
func refSoftmaxRow(z []float64) {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	if math.IsInf(m, -1) {
		for i := range z {
			z[i] = 0
		}
		return
	}
	s := 0.0
	for i, v := range z {
		z[i] = math.Exp(v - m)
		s += z[i]
	}
	for i := range z {
		z[i] /= s
	}
}

// refSoftmax: softmax(scale*x + mask[r/group]) per row of cols.
func refSoftmax(x, mask []float64, cols, group int, scale float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/cols; r++ {
		z := y[r*cols : (r+1)*cols]
		for j := range z {
			z[j] = scale * x[r*cols+j]
			if mask != nil {
				z[j] += mask[(r/group)*cols+j]
			}
		}
		refSoftmaxRow(z)
	}
	return y
}

func refEmbedding(table, ids []float64, dim int) []float64 {
	vocab := len(table) / dim
	y := make([]float64, len(ids)*dim)
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			continue
		}
		copy(y[i*dim:(i+1)*dim], table[int(id)*dim:])
	}
	return y
}

// refAttention: q (B, Tq, H*D), k and v (B, Tk, H*D), mask (B, Tk) or nil.
func refAttention(q, k, v, mask []float64, b, h, tq, tk, d int, causal bool, scale float64) []float64 {
	hd := h * d
	y := make([]float64, b*tq*hd)
	for bi := range b {
		for hi := range h {
			for i := range tq {
				s := make([]float64, tk)
				for j := range tk {
					dot := 0.0
					for c := range d {
						dot += q[(bi*tq+i)*hd+hi*d+c] * k[(bi*tk+j)*hd+hi*d+c]
					}
					s[j] = scale * dot
					if mask != nil {
						s[j] += mask[bi*tk+j]
					}
					if causal && j > i+tk-tq {
						s[j] = math.Inf(-1)
					}
				}
				refSoftmaxRow(s)
				for c := range d {
					o := 0.0
					for j := range tk {
						o += s[j] * v[(bi*tk+j)*hd+hi*d+c]
					}
					y[(bi*tq+i)*hd+hi*d+c] = o
				}
			}
		}
	}
	return y
}

// refCrossEntropy: mean over rows with a label in [0, V) of
// lse - (1-eps) z[label] - eps/V sum z.
func refCrossEntropy(z, labels []float64, cols int, eps float64) []float64 {
	total, count := 0.0, 0.0
	for r, lf := range labels {
		l := int(lf)
		if lf < 0 || l >= cols {
			continue
		}
		row := z[r*cols : (r+1)*cols]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		s, sum := 0.0, 0.0
		for _, v := range row {
			s += math.Exp(v - m)
			sum += v
		}
		lse := m + math.Log(s)
		total += lse - (1-eps)*row[l] - eps/float64(cols)*sum
		count++
	}
	return []float64{total / count}
}

func refL2Normalize(x []float64, cols int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/cols; r++ {
		n := 0.0
		for _, v := range x[r*cols : (r+1)*cols] {
			n += v * v
		}
		n = math.Max(math.Sqrt(n), eps)
		for j := range cols {
			y[r*cols+j] = x[r*cols+j] / n
		}
	}
	return y
}

// refRowReduce sums (or averages) each row of cols.
func refRowReduce(x []float64, cols int, mean bool) []float64 {
	y := make([]float64, len(x)/cols)
	for r := range y {
		for _, v := range x[r*cols : (r+1)*cols] {
			y[r] += v
		}
		if mean {
			y[r] /= float64(cols)
		}
	}
	return y
}

// refSlice: x of shape s, [start:end] along axis a.
func refSlice(x []float64, s Shape, a, start, end int) []float64 {
	outer, dim, inner := axisGeom(s, a)
	var y []float64
	for o := range outer {
		y = append(y, x[(o*dim+start)*inner:(o*dim+end)*inner]...)
	}
	return y
}

// refConcat joins xs (shapes equal but for axis a, whose sizes are dims).
func refConcat(xs [][]float64, outer int, dims []int, inner int) []float64 {
	var y []float64
	for o := range outer {
		for i, x := range xs {
			y = append(y, x[o*dims[i]*inner:(o+1)*dims[i]*inner]...)
		}
	}
	return y
}

// refPermute: y = x.permute(perm) for x of shape s.
func refPermute(x []float64, s Shape, perm []int) []float64 {
	r := len(s)
	ys := make([]int, r)
	for i, p := range perm {
		ys[i] = s[p]
	}
	y := make([]float64, len(x))
	idx := make([]int, r) // output index
	for k := range y {
		rem := k
		for d := r - 1; d >= 0; d-- {
			idx[d] = rem % ys[d]
			rem /= ys[d]
		}
		off := 0
		in := make([]int, r)
		for d := range r {
			in[perm[d]] = idx[d]
		}
		for d := range r {
			off = off*s[d] + in[d]
		}
		y[k] = x[off]
	}
	return y
}

// refSoftCrossEntropy: mean over rows of -sum_j t_j log softmax(z)_j.
func refSoftCrossEntropy(z, t []float64, cols int) []float64 {
	rows := len(z) / cols
	total := 0.0
	for r := range rows {
		row := z[r*cols : (r+1)*cols]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - m)
		}
		lse := m + math.Log(s)
		for j, v := range row {
			total -= t[r*cols+j] * (v - lse)
		}
	}
	return []float64{total / float64(rows)}
}
