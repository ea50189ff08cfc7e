package cpu

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"blip/gpu"
)

var blas32 gonum.Implementation

// useKernel selects the blocked assembly GEMM (sgemm.go) over gonum; tests
// turn it off to check the gonum path too.
var useKernel = haveKernel

// gemmEngine names what computes products, for DeviceInfo.
func gemmEngine() string {
	if useKernel {
		return kernelName
	}
	return "gonum"
}

// gemm: C[b] = Beta*C[b] + Act(Alpha * op(A[b]) @ op(B[b]) + Bias).
//
// The product goes through sgemm; with an epilogue (bias, activation) it is
// computed into C when Beta is 0, else into a scratch matrix, and the
// epilogue then runs over the rows. Batches run concurrently when each is
// too small to be worth splitting. With F16 the product reads copies of A
// and B rounded to f16 (gemm_f16.go).
func gemm(g gpu.Gemm) {
	batch, lda, ldb, ldc, sa, sb, sc := g.Dims()
	A, C, bias := f32(g.A), f32(g.C), f32(g.Bias)
	var B []float32
	if g.B.DType == gpu.F32 {
		B = f32(g.B)
	} else {
		// 16-bit weights: the reference widens them once per call.
		var tmp []float32
		B = load(g.B, int(g.B.Len), &tmp)
	}
	M, N, K := g.M, g.N, g.K
	alpha := g.Alpha
	if alpha == 0 {
		alpha = 1
	}
	aRows, aCols, bRows, bCols := M, K, K, N
	if g.TransA {
		aRows, aCols = K, M
	}
	if g.TransB {
		bRows, bCols = N, K
	}
	// Elements one batch of A and B spans.
	aLen := int64(aRows-1)*int64(lda) + int64(aCols)
	bLen := int64(bRows-1)*int64(ldb) + int64(bCols)
	if g.F16 {
		// Offsets into the copies are those into the views: each copy
		// starts where its view does and covers every batch.
		A = roundedF16(A[:int64(batch-1)*sa+aLen])
		if g.B.DType == gpu.F32 {
			B = roundedF16(B[:int64(batch-1)*sb+bLen])
		} // a B stored in f16 holds f16 values (and Check refuses bf16)
	}
	epilogue := bias != nil || g.Act != gpu.ActNone

	one := func(b int, scratch *[]float32) {
		a := A[int64(b)*sa : int64(b)*sa+aLen]
		bm := B[int64(b)*sb : int64(b)*sb+bLen]
		c := C[int64(b)*sc : int64(b)*sc+int64(M-1)*int64(ldc)+int64(N)]
		switch {
		case !epilogue:
			sgemm(g.TransA, g.TransB, M, N, K, alpha, a, lda, bm, ldb, g.Beta, c, ldc)
		case g.Beta == 0 && useKernel && M >= minKernelRows:
			// The epilogue runs per tile inside the blocked SGEMM.
			sgemmBlocked(g.TransA, g.TransB, M, N, K, alpha, a, lda, bm, ldb, 0, c, ldc, func(r0, r1, c0, c1 int) {
				epilogueTile(c, ldc, r0, r1, c0, c1, bias, g.Act)
			})
		case g.Beta == 0:
			sgemm(g.TransA, g.TransB, M, N, K, alpha, a, lda, bm, ldb, 0, c, ldc)
			epilogueRows(c, ldc, nil, 0, M, N, bias, g.Act, 0)
		default:
			if cap(*scratch) < M*N {
				*scratch = make([]float32, M*N)
			}
			t := (*scratch)[:M*N]
			sgemm(g.TransA, g.TransB, M, N, K, alpha, a, lda, bm, ldb, 0, t, N)
			epilogueRows(c, ldc, t, N, M, N, bias, g.Act, g.Beta)
		}
	}

	workers := runtime.GOMAXPROCS(0)
	small := 2*int64(M)*int64(N)*int64(K) < 1<<23
	if batch == 1 || workers == 1 || !small {
		var scratch []float32
		for b := 0; b < batch; b++ {
			one(b, &scratch)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, batch)
	for b := 0; b < batch; b++ {
		next <- b
	}
	close(next)
	for w := 0; w < min(workers, batch); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []float32
			for b := range next {
				one(b, &scratch)
			}
		}()
	}
	wg.Wait()
}

const minKernelRows = 16

// sgemm computes C = alpha*op(A)@op(B) + beta*C (beta 0: C is not read) with
// the assembly kernel where there is one, else with gonum. gonum is slow for
// A stored (K, M), so such an A is first copied into (M, K) form.
func sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	// Packing costs O(k*n) whatever m is: below minKernelRows rows gonum,
	// which reads B in place, is faster.
	if useKernel && m >= minKernelRows {
		sgemmBlocked(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
		return
	}
	if tA {
		a, lda = transpose(a, k, m, lda), k
	}
	t := blas.NoTrans
	if tB {
		t = blas.Trans
	}
	// gonum zeroes C first when beta is 0, so garbage in C is not read.
	// With few rows the product streams B once and gonum runs it on one
	// core: the columns are split across the cores instead (decoding's
	// matrix-vector products are bandwidth-bound).
	work := int64(m) * int64(n) * int64(k)
	if work < 1<<20 {
		work = 0 // goroutines cost more than they save below ~100 µs
	}
	parallel(n, work, func(j0, j1 int) {
		bj := b[j0:]
		if tB {
			bj = b[j0*ldb:]
		}
		blas32.Sgemm(blas.NoTrans, t, m, j1-j0, k, alpha, a, lda, bj, ldb, beta, c[j0:], ldc)
	})
}

// transpose copies a (rows, cols) matrix with leading dimension ld into a
// packed (cols, rows) one.
func transpose(a []float32, rows, cols, ld int) []float32 {
	t := make([]float32, rows*cols)
	const blk = 32
	parallel(cols, int64(rows*cols), func(c0, c1 int) {
		for i0 := 0; i0 < rows; i0 += blk {
			i1 := min(i0+blk, rows)
			for j := c0; j < c1; j++ {
				tj := t[j*rows : (j+1)*rows]
				for i := i0; i < i1; i++ {
					tj[i] = a[i*ld+j]
				}
			}
		}
	})
	return t
}

// epilogueRows applies C = Beta*C + Act(T + Bias) on M rows of N, where T is
// the product: in C itself when t is nil (then Beta is 0), else in t with
// leading dimension ldt.
func epilogueRows(c []float32, ldc int, t []float32, ldt, M, N int, bias []float32, act gpu.Act, beta float32) {
	parallel(M, int64(M)*int64(N)*4, func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			ci := c[i*ldc : i*ldc+N]
			ti := ci
			if t != nil {
				ti = t[i*ldt : i*ldt+N]
			}
			for j := range ci {
				v := ti[j]
				if bias != nil {
					v += bias[j]
				}
				v = activate(v, act)
				if t != nil && beta != 0 {
					v += beta * ci[j]
				}
				ci[j] = v
			}
		}
	})
}

// epilogueTile applies bias and act to rows r0..r1-1, columns c0..c1-1
// of c (ldc), in place.
func epilogueTile(c []float32, ldc, r0, r1, c0, c1 int, bias []float32, act gpu.Act) {
	var b []float32
	if bias != nil {
		b = bias[c0:c1]
	}
	for i := r0; i < r1; i++ {
		ci := c[i*ldc+c0 : i*ldc+c1]
		for j := range ci {
			v := ci[j]
			if b != nil {
				v += b[j]
			}
			ci[j] = activate(v, act)
		}
	}
}

func activate(v float32, act gpu.Act) float32 {
	switch act {
	case gpu.ActGELU:
		return gelu(v)
	case gpu.ActTanh:
		return float32(math.Tanh(float64(v)))
	}
	return v
}

// gelu is the exact GELU, x/2 * (1 + erf(x/sqrt 2)), evaluated in float64
// with erf from erf32 and rounded once: within 2e-7 of the true value (for
// |gelu(x)| <= 1; relatively above), about 2x faster than with math.Erf.
func gelu(v float32) float32 {
	x := float64(v)
	return float32(0.5 * x * (1 + erf32(x*(1/math.Sqrt2))))
}

// erf32 is erf to single precision (absolute error < 7e-8): the rational
// minimax approximation Eigen and XLA use for float32, and ±1 beyond |x| = 4
// where erf rounds to ±1 in float32.
func erf32(x float64) float64 {
	if x >= 4 {
		return 1
	}
	if x <= -4 {
		return -1
	}
	const (
		a1  = -1.60960333262415e-02
		a3  = -2.95459980854025e-03
		a5  = -7.34990630326855e-04
		a7  = -5.69250639462346e-05
		a9  = -2.10102402082508e-06
		a11 = 2.77068142495902e-08
		a13 = -2.72614225801306e-10
		b0  = -1.42647390514189e-02
		b2  = -7.37332916720468e-03
		b4  = -1.68282697438203e-03
		b6  = -2.13374055278905e-04
		b8  = -1.45660718464996e-05
	)
	x2 := x * x
	p := ((((((a13*x2+a11)*x2+a9)*x2+a7)*x2+a5)*x2+a3)*x2 + a1) * x
	q := (((b8*x2+b6)*x2+b4)*x2+b2)*x2 + b0
	return p / q
}
