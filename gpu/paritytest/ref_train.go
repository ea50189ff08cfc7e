package paritytest

// Float64 references of the training kernels (gpu/calls_train.go), written
// from the call comments with naive loops, like ref.go.

import (
	"math"

	"blip/gpu"
)

// refColumns returns the column sums of term(r, c) over rows; when scratch
// is not nil and rows > gpu.ColumnBlock it also receives the partial sums of
// each block of gpu.ColumnBlock rows (the documented content of a column
// reduction's Scratch).
func refColumns(rows, cols int, term func(r, c int) float64, scratch []float64) []float64 {
	tot := make([]float64, cols)
	for c := 0; c < cols; c++ {
		for p := 0; p*gpu.ColumnBlock < rows; p++ {
			var s float64
			for r := p * gpu.ColumnBlock; r < min(rows, (p+1)*gpu.ColumnBlock); r++ {
				s += term(r, c)
			}
			if scratch != nil && rows > gpu.ColumnBlock {
				scratch[p*cols+c] = s
			}
			tot[c] += s
		}
	}
	return tot
}

func refLayerNormBackward(l gpu.LayerNormBackward, X, DY, DX, Gamma, Mean, Rstd, DGamma, DBeta, Scratch []float64) {
	rows, cols := l.Rows, l.Cols
	xhat := func(r, c int) float64 { return (X[r*cols+c] - Mean[r]) * Rstd[r] }
	// Parameter gradients before DX, which may alias DY.
	var sg, sb []float64
	if Scratch != nil {
		n := int(gpu.ColumnScratchLen(rows, cols))
		sg, sb = Scratch[:n], Scratch[n:2*n]
	}
	// Only the Scratch halves of the gradients asked for are written.
	if DGamma != nil {
		g := refColumns(rows, cols, func(r, c int) float64 { return DY[r*cols+c] * xhat(r, c) }, sg)
		for c := range cols {
			DGamma[c] += g[c]
		}
	}
	if DBeta != nil {
		b := refColumns(rows, cols, func(r, c int) float64 { return DY[r*cols+c] }, sb)
		for c := range cols {
			DBeta[c] += b[c]
		}
	}
	parallelFor(rows, func(r int) {
		g := make([]float64, cols)
		var a, b float64
		for c := range cols {
			g[c] = DY[r*cols+c] * Gamma[c]
			a += g[c]
			b += g[c] * xhat(r, c)
		}
		a /= float64(cols)
		b /= float64(cols)
		for c := range cols {
			DX[r*cols+c] = Rstd[r] * (g[c] - a - xhat(r, c)*b)
		}
	})
}

func refSoftmaxBackward(s gpu.SoftmaxBackward, Y, DY, DX []float64) {
	cols := s.Cols
	scale := float64(s.Scale)
	if scale == 0 {
		scale = 1
	}
	parallelFor(s.Rows, func(r int) {
		y, dy, dx := Y[r*cols:(r+1)*cols], DY[r*cols:(r+1)*cols], DX[r*cols:(r+1)*cols]
		var dot float64
		for c := range cols {
			dot += y[c] * dy[c]
		}
		for c := range cols {
			dx[c] = scale * y[c] * (dy[c] - dot)
		}
	})
}

// refActDeriv is act'(x) (for fromOutput, in terms of the output x).
func refActDeriv(a gpu.Act, x float64, fromOutput bool) float64 {
	switch a {
	case gpu.ActGELU:
		// d/dx x*Phi(x) = Phi(x) + x*phi(x).
		phi := math.Exp(-x*x/2) / math.Sqrt(2*math.Pi)
		d := 0.5 * (1 + math.Erf(x/math.Sqrt2))
		if phi != 0 {
			d += x * phi
		}
		return d
	case gpu.ActTanh:
		if fromOutput {
			return 1 - x*x
		}
		return 1 / (math.Cosh(x) * math.Cosh(x))
	}
	return 1
}

func refActBackward(a gpu.ActBackward, X, DY, DX, DBias, Scratch []float64) {
	n := a.Rows * a.Cols
	dx := make([]float64, n)
	for i := range n {
		d := 1.0
		if a.Act != gpu.ActNone {
			d = refActDeriv(a.Act, X[i], a.FromOutput)
		}
		dx[i] = DY[i] * d
	}
	copy(DX, dx)
	if DBias != nil {
		s := refColumns(a.Rows, a.Cols, func(r, c int) float64 { return dx[r*a.Cols+c] }, Scratch)
		for c := range a.Cols {
			DBias[c] += s[c]
		}
	}
}

func refEmbeddingBackward(e gpu.EmbeddingBackward, DY, Ids, DTable []float64) {
	for i := range e.N {
		id := int(Ids[i])
		if id < 0 || id >= e.Vocab {
			continue
		}
		for c := range e.Dim {
			DTable[id*e.Dim+c] += DY[i*e.Dim+c]
		}
	}
}

func refCrossEntropy(k gpu.CrossEntropy, Logits, Labels, Loss, DLogits []float64) {
	cols := k.Cols
	eps := float64(k.Smoothing)
	scale := float64(k.Scale)
	if scale == 0 {
		scale = 1
	}
	parallelFor(k.Rows, func(r int) {
		z := append([]float64(nil), Logits[r*cols:(r+1)*cols]...)
		y := int(Labels[r])
		var dz []float64
		if DLogits != nil {
			dz = DLogits[r*cols : (r+1)*cols]
		}
		if y < 0 || y >= cols {
			if Loss != nil {
				Loss[r] = 0
			}
			clear(dz)
			return
		}
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range z {
			s += math.Exp(v - m)
		}
		lse := m + math.Log(s)
		if Loss != nil {
			var mean float64 // mean over classes of -log p
			for _, v := range z {
				mean += lse - v
			}
			mean /= float64(cols)
			Loss[r] = lse - z[y]
			if eps != 0 { // the mean is +Inf where a logit is -Inf
				Loss[r] = (1-eps)*Loss[r] + eps*mean
			}
		}
		for c := range dz {
			p := math.Exp(z[c] - lse)
			t := eps / float64(cols)
			if c == y {
				t += 1 - eps
			}
			dz[c] = scale * (p - t)
		}
	})
}

// refPhilox is Philox4x32-10 written out from Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3" (SC11), independently of gpu/cpu's.
func refPhilox(ctr [4]uint32, key [2]uint32) [4]uint32 {
	const (
		m0, m1 = 0xD2511F53, 0xCD9E8D57
		w0, w1 = 0x9E3779B9, 0xBB67AE85
	)
	for i := 0; i < 10; i++ {
		p0 := uint64(m0) * uint64(ctr[0])
		p1 := uint64(m1) * uint64(ctr[2])
		ctr = [4]uint32{
			uint32(p1>>32) ^ ctr[1] ^ key[0],
			uint32(p1),
			uint32(p0>>32) ^ ctr[3] ^ key[1],
			uint32(p0),
		}
		key[0] += w0
		key[1] += w1
	}
	return ctr
}

func refDropout(d gpu.Dropout, X, Y []float64) {
	if d.P == 0 {
		copy(Y, X)
		return
	}
	thr := uint64(math.Floor(float64(d.P) * (1 << 32)))
	scale := float64(float32(1 / (1 - float64(d.P))))
	key := [2]uint32{uint32(d.Seed), uint32(d.Seed >> 32)}
	x := append([]float64(nil), X[:d.N]...)
	for i := 0; i < d.N; i += 4 {
		b := uint64(i / 4)
		r := refPhilox([4]uint32{uint32(b), uint32(b >> 32), 0, 0}, key)
		for j := 0; j < 4 && i+j < d.N; j++ {
			if uint64(r[j]) < thr {
				Y[i+j] = 0
			} else {
				Y[i+j] = x[i+j] * scale
			}
		}
	}
}

func refL2Normalize(l gpu.L2Normalize, X, Y []float64) {
	cols := l.Cols
	parallelFor(l.Rows, func(r int) {
		x := append([]float64(nil), X[r*cols:(r+1)*cols]...)
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		d := math.Max(math.Sqrt(ss), float64(l.Eps))
		for c, v := range x {
			Y[r*cols+c] = v / d
		}
	})
}

func refL2NormalizeBackward(l gpu.L2NormalizeBackward, X, DY, DX []float64) {
	cols := l.Cols
	eps := float64(l.Eps)
	parallelFor(l.Rows, func(r int) {
		x, dy := X[r*cols:(r+1)*cols], append([]float64(nil), DY[r*cols:(r+1)*cols]...)
		var ss, dot float64
		for c := range cols {
			ss += x[c] * x[c]
			dot += x[c] * dy[c]
		}
		n := math.Sqrt(ss)
		for c := range cols {
			if n >= eps {
				DX[r*cols+c] = (dy[c] - x[c]*dot/(n*n)) / n
			} else {
				DX[r*cols+c] = dy[c] / eps
			}
		}
	})
}

func refAdamW(a gpu.AdamW, P, G, M, V []float64) {
	lr, wd := float64(a.LR), float64(a.WeightDecay)
	b1, b2, eps := float64(a.Beta1), float64(a.Beta2), float64(a.Eps)
	bc1, bc2 := float64(a.BiasCorrection1), float64(a.BiasCorrection2)
	gs := float64(a.GradScale)
	if gs == 0 {
		gs = 1
	}
	for i := range a.N {
		g := G[i] * gs
		P[i] *= 1 - lr*wd
		M[i] = b1*M[i] + (1-b1)*g
		V[i] = b2*V[i] + (1-b2)*g*g
		P[i] -= lr / bc1 * M[i] / (math.Sqrt(V[i])/math.Sqrt(bc2) + eps)
	}
}

func refColumnSum(k gpu.ColumnSum, X, Y, Scratch []float64) {
	s := refColumns(k.Rows, k.Cols, func(r, c int) float64 { return X[r*k.Cols+c] }, Scratch)
	for c := range k.Cols {
		if k.Accumulate {
			Y[c] += s[c]
		} else {
			Y[c] = s[c]
		}
	}
}

func refCopy2D(k gpu.Copy2D, X, Y []float64) {
	ldx, ldy := k.Lds()
	for r := range k.Rows {
		for c := range k.Cols {
			if k.Accumulate {
				Y[r*ldy+c] += X[r*ldx+c]
			} else {
				Y[r*ldy+c] = X[r*ldx+c]
			}
		}
	}
}
