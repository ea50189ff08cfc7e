package paritytest

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
)

// The backward references checked against central differences of the
// forward references, in float64: L = sum(W * forward(X)) for random W, so
// dL/dX must equal the backward pass with DY = W.

func randVec(r *rand.Rand, n int, mean, std float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = mean + std*r.NormFloat64()
	}
	return v
}

// numGrad is the central difference of f with respect to each element of x.
func numGrad(x []float64, f func() float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		h := 1e-6 * max(1, math.Abs(x[i]))
		x0 := x[i]
		x[i] = x0 + h
		fp := f()
		x[i] = x0 - h
		fm := f()
		x[i] = x0
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func closeTo(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	scale := 1.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > tol*scale || math.IsNaN(got[i]) {
			t.Fatalf("%s[%d] = %g, numerically %g", what, i, got[i], want[i])
		}
	}
}

func TestGradLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 37, 9 // two column blocks
	fw := gpu.LayerNorm{Rows: rows, Cols: cols, Eps: 1e-5}
	x, gamma, beta := randVec(r, rows*cols, 0.5, 2), randVec(r, cols, 1, 0.3), randVec(r, cols, 0, 0.3)
	w := randVec(r, rows*cols, 0, 1)
	loss := func() float64 {
		y := make([]float64, rows*cols)
		refLayerNorm(fw, x, y, gamma, beta, nil, nil)
		return dot(w, y)
	}
	mean, rstd := make([]float64, rows), make([]float64, rows)
	refLayerNorm(fw, x, make([]float64, rows*cols), gamma, beta, mean, rstd)
	bw := gpu.LayerNormBackward{Rows: rows, Cols: cols}
	dx, dg, db := make([]float64, rows*cols), make([]float64, cols), make([]float64, cols)
	scratch := make([]float64, 2*gpu.ColumnScratchLen(rows, cols))
	refLayerNormBackward(bw, x, w, dx, gamma, mean, rstd, dg, db, scratch)
	closeTo(t, "DX", dx, numGrad(x, loss), 1e-6)
	closeTo(t, "DGamma", dg, numGrad(gamma, loss), 1e-6)
	closeTo(t, "DBeta", db, numGrad(beta, loss), 1e-6)
	// The scratch halves hold the block sums of DGamma and DBeta.
	n := len(scratch) / 2
	for c := range cols {
		if s := scratch[c] + scratch[cols+c]; math.Abs(s-dg[c]) > 1e-9*max(1, math.Abs(dg[c])) {
			t.Fatalf("DGamma partials of column %d sum to %g, want %g", c, s, dg[c])
		}
		if s := scratch[n+c] + scratch[n+cols+c]; math.Abs(s-db[c]) > 1e-9*max(1, math.Abs(db[c])) {
			t.Fatalf("DBeta partials of column %d sum to %g, want %g", c, s, db[c])
		}
	}
}

func TestGradSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 4, 11
	fw := gpu.Softmax{Rows: rows, Cols: cols, Scale: 0.3}
	x, w := randVec(r, rows*cols, 0, 2), randVec(r, rows*cols, 0, 1)
	y := make([]float64, rows*cols)
	loss := func() float64 {
		refSoftmax(fw, x, y, nil)
		return dot(w, y)
	}
	want := numGrad(x, loss)
	loss()
	dx := make([]float64, rows*cols)
	refSoftmaxBackward(gpu.SoftmaxBackward{Rows: rows, Cols: cols, Scale: 0.3}, y, w, dx)
	closeTo(t, "DX", dx, want, 1e-6)
}

func TestGradAct(t *testing.T) {
	for _, a := range []gpu.Act{gpu.ActGELU, gpu.ActTanh} {
		for _, x := range []float64{-9, -3, -1.2, -0.7, -0.1, 0, 0.3, 1, 2.5, 7} {
			h := 1e-6
			want := (refAct(x+h, a) - refAct(x-h, a)) / (2 * h)
			if got := refActDeriv(a, x, false); math.Abs(got-want) > 1e-8 {
				t.Errorf("act %d: derivative at %g = %g, numerically %g", a, x, got, want)
			}
			if a == gpu.ActTanh {
				if got := refActDeriv(a, math.Tanh(x), true); math.Abs(got-want) > 1e-8 {
					t.Errorf("tanh: derivative from the output at %g = %g, numerically %g", x, got, want)
				}
			}
		}
	}
}

func TestGradCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 5, 7
	labels := []float64{3, -100, 0, 6, 7} // row 1 ignored, row 4 out of range
	for _, eps := range []float32{0, 0.1} {
		k := gpu.CrossEntropy{Rows: rows, Cols: cols, Smoothing: eps, Scale: 0.25}
		z := randVec(r, rows*cols, 0, 2)
		loss := make([]float64, rows)
		lossFn := func() float64 {
			refCrossEntropy(k, z, labels, loss, nil)
			var s float64
			for _, l := range loss {
				s += 0.25 * l
			}
			return s
		}
		want := numGrad(z, lossFn)
		dz := make([]float64, rows*cols)
		refCrossEntropy(k, z, labels, loss, dz)
		closeTo(t, "DLogits", dz, want, 1e-7)
		// PyTorch's smoothed loss: (1-eps)*nll + eps*mean(-log p).
		lse := func(row []float64) float64 {
			var s float64
			for _, v := range row {
				s += math.Exp(v)
			}
			return math.Log(s)
		}
		row := z[0:cols]
		var mean float64
		for _, v := range row {
			mean += lse(row) - v
		}
		mean /= cols
		if w := (1-float64(eps))*(lse(row)-row[3]) + float64(eps)*mean; math.Abs(loss[0]-w) > 1e-12 {
			t.Errorf("eps %g: loss %g, want %g", eps, loss[0], w)
		}
		if loss[1] != 0 || loss[4] != 0 {
			t.Errorf("ignored rows have losses %g, %g", loss[1], loss[4])
		}
	}
}

func TestGradL2Normalize(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 3, 6
	for _, eps := range []float32{1e-12, 1e3} { // the norm, then eps, in the denominator
		x, w := randVec(r, rows*cols, 0, 1), randVec(r, rows*cols, 0, 1)
		y := make([]float64, rows*cols)
		loss := func() float64 {
			refL2Normalize(gpu.L2Normalize{Rows: rows, Cols: cols, Eps: eps}, x, y)
			return dot(w, y)
		}
		want := numGrad(x, loss)
		dx := make([]float64, rows*cols)
		refL2NormalizeBackward(gpu.L2NormalizeBackward{Rows: rows, Cols: cols, Eps: eps}, x, w, dx)
		closeTo(t, "DX", dx, want, 1e-7)
	}
}

// Known-answer vectors of Philox4x32-10 from Random123 (kat_vectors).
func TestPhiloxKnownAnswers(t *testing.T) {
	for _, v := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := refPhilox(v.ctr, v.key); got != v.want {
			t.Errorf("philox4x32-10(%#x, %#x) = %#x, want %#x", v.ctr, v.key, got, v.want)
		}
	}
}

// The dropout reference drops about P of the elements and keeps the rest
// scaled; masks of different seeds differ.
func TestDropoutStatistics(t *testing.T) {
	const n = 100000
	x := make([]float64, n)
	for i := range x {
		x[i] = 1
	}
	for _, p := range []float32{0.1, 0.5} {
		y1, y2 := make([]float64, n), make([]float64, n)
		refDropout(gpu.Dropout{N: n, P: p, Seed: 1}, x, y1)
		refDropout(gpu.Dropout{N: n, P: p, Seed: 2}, x, y2)
		dropped, same := 0, 0
		for i := range y1 {
			if y1[i] == 0 {
				dropped++
			} else if y1[i] != float64(float32(1/(1-float64(p)))) {
				t.Fatalf("p %g: kept element %g", p, y1[i])
			}
			if (y1[i] == 0) == (y2[i] == 0) {
				same++
			}
		}
		frac := float64(dropped) / n
		sd := math.Sqrt(float64(p) * (1 - float64(p)) / n)
		if math.Abs(frac-float64(p)) > 5*sd {
			t.Errorf("p %g: dropped %.4f", p, frac)
		}
		// Independent masks agree on p^2 + (1-p)^2 of the elements.
		agree := float64(p*p + (1-p)*(1-p))
		if f := float64(same) / n; math.Abs(f-agree) > 0.01 {
			t.Errorf("p %g: masks of seeds 1 and 2 agree on %.4f, want about %.4f", p, f, agree)
		}
	}
}
