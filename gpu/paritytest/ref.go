package paritytest

// Float64 reference implementations of the kernels, written from the
// comments of gpu/calls.go with naive loops. They take the call as a template
// for its scalar parameters (its views are not used) and the view contents.

import (
	"math"
	"runtime"
	"sort"
	"sync"

	"blip/gpu"
)

// parallelFor runs f(i) for i < n on all CPUs (references are slow).
func parallelFor(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}

func refAct(x float64, a gpu.Act) float64 {
	switch a {
	case gpu.ActGELU:
		return x / 2 * (1 + math.Erf(x/math.Sqrt2))
	case gpu.ActTanh:
		return math.Tanh(x)
	}
	return x
}

// refGemm: C[b] = Beta*C[b] + Act(Alpha*op(A[b])@op(B[b]) + Bias).
func refGemm(g gpu.Gemm, A, B, C, bias []float64) {
	M, N, K := g.M, g.N, g.K
	batch := g.Batch
	if batch == 0 {
		batch = 1
	}
	lda, ldb, ldc := g.LdA, g.LdB, g.LdC
	if lda == 0 {
		lda = K
		if g.TransA {
			lda = M
		}
	}
	if ldb == 0 {
		ldb = N
		if g.TransB {
			ldb = K
		}
	}
	if ldc == 0 {
		ldc = N
	}
	sc := int(g.StrideC)
	if sc == 0 {
		sc = M * ldc
	}
	alpha := float64(g.Alpha)
	if alpha == 0 {
		alpha = 1
	}
	beta := float64(g.Beta)
	// op(B[b]) transposed to (N, K) rows, so that every C element is a
	// contiguous dot product.
	bt := make([][]float64, batch)
	parallelFor(batch, func(b int) {
		b0 := b * int(g.StrideB)
		t := make([]float64, N*K)
		for j := range N {
			for l := range K {
				if g.TransB {
					t[j*K+l] = B[b0+j*ldb+l]
				} else {
					t[j*K+l] = B[b0+l*ldb+j]
				}
			}
		}
		bt[b] = t
	})
	parallelFor(batch*M, func(bi int) {
		b, i := bi/M, bi%M
		a0, c0 := b*int(g.StrideA), b*sc
		// Row i of op(A).
		ar := make([]float64, K)
		for l := range K {
			if g.TransA {
				ar[l] = A[a0+l*lda+i]
			} else {
				ar[l] = A[a0+i*lda+l]
			}
		}
		for j := range N {
			bcol := bt[b][j*K : (j+1)*K]
			var s float64
			for l, x := range ar {
				s += x * bcol[l]
			}
			v := alpha * s
			if bias != nil {
				v += bias[j]
			}
			v = refAct(v, g.Act)
			ci := c0 + i*ldc + j
			if beta != 0 {
				v += beta * C[ci]
			}
			C[ci] = v
		}
	})
}

func refUnary(u gpu.Unary, X, Y []float64) {
	for i := range u.N {
		x := X[i]
		var y float64
		switch u.Op {
		case gpu.UnaryCopy:
			y = x
		case gpu.UnaryScale:
			y = float64(u.Alpha) * x
		case gpu.UnaryGELU:
			y = refAct(x, gpu.ActGELU)
		case gpu.UnaryTanh:
			y = math.Tanh(x)
		case gpu.UnaryExp:
			y = math.Exp(x)
		}
		Y[i] = y
	}
}

func refBinary(o gpu.Binary, A, B, C []float64) {
	bn := o.BN
	if bn == 0 {
		bn = o.N
	}
	// B may be C itself: read all of it first.
	b := append([]float64(nil), B[:bn]...)
	for i := range o.N {
		x, y := A[i], b[i%bn]
		var z float64
		switch o.Op {
		case gpu.BinaryAdd:
			z = x + y
		case gpu.BinarySub:
			z = x - y
		case gpu.BinaryMul:
			z = x * y
		case gpu.BinaryDiv:
			z = x / y
		}
		C[i] = z
	}
}

func refReduce(r gpu.Reduce, X, Y []float64) {
	for i := range r.Rows {
		row := X[i*r.Cols : (i+1)*r.Cols]
		var y float64
		switch r.Op {
		case gpu.ReduceSum, gpu.ReduceMean:
			for _, v := range row {
				y += v
			}
			if r.Op == gpu.ReduceMean {
				y /= float64(r.Cols)
			}
		case gpu.ReduceMax:
			y = math.Inf(-1)
			for _, v := range row {
				y = math.Max(y, v) // NaN if any is NaN
			}
		}
		Y[i] = y
	}
}

func refSoftmax(s gpu.Softmax, X, Y, Mask []float64) {
	scale := float64(s.Scale)
	if scale == 0 {
		scale = 1
	}
	group := s.MaskGroup
	if group == 0 {
		group = 1
	}
	n := s.Cols
	for r := range s.Rows {
		z := make([]float64, n)
		m := math.Inf(-1)
		for j := range n {
			z[j] = scale * X[r*n+j]
			if Mask != nil {
				z[j] += Mask[(r/group)*n+j]
			}
			m = math.Max(m, z[j])
		}
		y := Y[r*n : (r+1)*n]
		if math.IsInf(m, -1) {
			for j := range y {
				y[j] = 0
			}
			continue
		}
		var sum float64
		for j := range n {
			z[j] = math.Exp(z[j] - m)
			sum += z[j]
		}
		for j := range n {
			y[j] = z[j] / sum
		}
	}
}

func refLayerNorm(l gpu.LayerNorm, X, Y, Gamma, Beta, Mean, Rstd []float64) {
	n := l.Cols
	for r := range l.Rows {
		x := append([]float64(nil), X[r*n:(r+1)*n]...)
		var mean float64
		for _, v := range x {
			mean += v
		}
		mean /= float64(n)
		var v2 float64
		for _, v := range x {
			v2 += (v - mean) * (v - mean)
		}
		rstd := 1 / math.Sqrt(v2/float64(n)+float64(l.Eps))
		for j, v := range x {
			Y[r*n+j] = (v-mean)*rstd*Gamma[j] + Beta[j]
		}
		if Mean != nil {
			Mean[r] = mean
		}
		if Rstd != nil {
			Rstd[r] = rstd
		}
	}
}

func refEmbedding(e gpu.Embedding, Table, Ids, Y []float64) {
	for i := range e.N {
		id := int(Ids[i])
		for j := range e.Dim {
			if id < 0 || id >= e.Vocab {
				Y[i*e.Dim+j] = 0
			} else {
				Y[i*e.Dim+j] = Table[id*e.Dim+j]
			}
		}
	}
}

func refArgMax(a gpu.ArgMax, X, Y []float64) {
	for r := range a.Rows {
		best := 0
		found := false
		for j := range a.Cols {
			v := X[r*a.Cols+j]
			if math.IsNaN(v) {
				continue
			}
			if !found || v > X[r*a.Cols+best] {
				best, found = j, true
			}
		}
		Y[r] = float64(best)
	}
}

func refTopK(t gpu.TopK, X, Vals, Idx []float64) {
	for r := range t.Rows {
		row := X[r*t.Cols : (r+1)*t.Cols]
		order := make([]int, t.Cols)
		for j := range order {
			order[j] = j
		}
		// Stable: equal values (and NaNs among themselves) keep index order.
		sort.SliceStable(order, func(a, b int) bool {
			va, vb := row[order[a]], row[order[b]]
			if math.IsNaN(vb) {
				return !math.IsNaN(va)
			}
			return va > vb
		})
		for i := range t.K {
			Vals[r*t.K+i] = row[order[i]]
			Idx[r*t.K+i] = float64(order[i])
		}
	}
}

func refPermute(p gpu.Permute, X, Y []float64) {
	s := p.Shape
	var os [4]int
	for d := range 4 {
		os[d] = s[p.Perm[d]]
	}
	var o [4]int // output index
	k := 0
	for o[0] = 0; o[0] < os[0]; o[0]++ {
		for o[1] = 0; o[1] < os[1]; o[1]++ {
			for o[2] = 0; o[2] < os[2]; o[2]++ {
				for o[3] = 0; o[3] < os[3]; o[3]++ {
					var in [4]int // X index: in[Perm[d]] = o[d]
					for d := range 4 {
						in[p.Perm[d]] = o[d]
					}
					Y[k] = X[((in[0]*s[1]+in[1])*s[2]+in[2])*s[3]+in[3]]
					k++
				}
			}
		}
	}
}
