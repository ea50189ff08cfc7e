package cpu

import (
	"runtime"
	"sync"
)

// The blocked single-precision GEMM around sgemmKernel6x16 (BLIS-style):
// for each block of kc steps of K, B is packed into 16-column micro-panels
// shared by all workers; then tiles of C (mc rows x ncb columns) are handed
// out to GOMAXPROCS workers, each packing its rows of A (scaled by alpha)
// into 6-row micro-panels and running the micro-kernel over the tile.
// Transposed operands are handled by the packing.
const (
	mr  = 6   // micro-kernel rows
	nr  = 16  // micro-kernel columns
	kc  = 256 // K block: a B micro-panel (16 KiB) stays in L1
	mc  = 96  // rows per tile: the packed A block (96 KiB) stays in L2
	ncb = 512 // columns per tile
)

// sgemmBlocked computes C = alpha*op(A)@op(B) + beta*C for row-major C (m x
// n, leading dimension ldc); op(A) is (m x k), A stored (k x m) when tA, and
// op(B) is (k x n), B stored (n x k) when tB. With beta 0, C is not read.
//
// epi, if set, is called once per finished tile of C (rows r0..r1-1,
// columns c0..c1-1) by the worker that computed it, while the tile is
// still in its cache: a bias/activation epilogue costs no extra pass over C.
func sgemmBlocked(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epi func(r0, r1, c0, c1 int)) {
	if beta != 1 {
		parallel(m, int64(m)*int64(n), func(r0, r1 int) {
			for i := r0; i < r1; i++ {
				row := c[i*ldc : i*ldc+n]
				if beta == 0 {
					clear(row)
				} else {
					for j := range row {
						row[j] *= beta
					}
				}
			}
		})
	}
	panels := (n + nr - 1) / nr
	bp := make([]float32, panels*nr*min(kc, k))
	mt, nt := (m+mc-1)/mc, (n+ncb-1)/ncb
	tiles := mt * nt
	workers := runtime.GOMAXPROCS(0)
	if 2*int64(m)*int64(n)*int64(k) < 1<<21 {
		workers = 1
	}
	workers = min(workers, tiles)
	aps := make([][]float32, workers)
	for w := range aps {
		aps[w] = make([]float32, mc*min(kc, k))
	}

	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		parallel(panels, int64(panels)*nr*int64(kb), func(p0, p1 int) {
			for p := p0; p < p1; p++ {
				packB(tB, b, ldb, pc, kb, p*nr, n, bp[p*nr*kb:(p+1)*nr*kb])
			}
		})
		tile := func(w, t int) {
			ic, jc := (t/nt)*mc, (t%nt)*ncb
			mb, nb := min(mc, m-ic), min(ncb, n-jc)
			ap := aps[w]
			for ir := 0; ir < mb; ir += mr {
				packA(tA, a, lda, ic+ir, min(mr, mb-ir), pc, kb, alpha, ap[ir*kb:(ir+mr)*kb])
			}
			var tmp [mr * nr]float32
			for jr := 0; jr < nb; jr += nr {
				j := jc + jr
				bpp := &bp[(j/nr)*nr*kb]
				for ir := 0; ir < mb; ir += mr {
					i := ic + ir
					app := &ap[ir*kb]
					rows, cols := min(mr, m-i), min(nr, n-j)
					if rows == mr && cols == nr {
						sgemmKernel6x16(kb, app, bpp, &c[i*ldc+j], ldc)
						continue
					}
					tmp = [mr * nr]float32{}
					sgemmKernel6x16(kb, app, bpp, &tmp[0], nr)
					for r := range rows {
						cr := c[(i+r)*ldc+j : (i+r)*ldc+j+cols]
						for q := range cr {
							cr[q] += tmp[r*nr+q]
						}
					}
				}
			}
			if epi != nil && pc+kb == k {
				epi(ic, ic+mb, jc, jc+nb)
			}
		}
		if workers == 1 {
			for t := range tiles {
				tile(0, t)
			}
			continue
		}
		var next sync.Mutex
		t := 0
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					next.Lock()
					my := t
					t++
					next.Unlock()
					if my >= tiles {
						return
					}
					tile(w, my)
				}
			}()
		}
		wg.Wait()
	}
}

// packA writes rows i0..i0+rows of op(A), columns p0..p0+kb, times alpha,
// as one 6-row micro-panel: dst[l*mr + r]; rows past the end are zero.
func packA(tA bool, a []float32, lda, i0, rows, p0, kb int, alpha float32, dst []float32) {
	dst = dst[:kb*mr]
	if rows < mr {
		clear(dst)
	}
	if tA { // A stored (k, m): element (i, l) at a[l*lda+i]
		for l := range kb {
			src := a[(p0+l)*lda+i0 : (p0+l)*lda+i0+rows]
			d := dst[l*mr : l*mr+rows]
			for r, v := range src {
				d[r] = alpha * v
			}
		}
		return
	}
	for r := range rows {
		src := a[(i0+r)*lda+p0 : (i0+r)*lda+p0+kb]
		for l, v := range src {
			dst[l*mr+r] = alpha * v
		}
	}
}

// packB writes rows p0..p0+kb of op(B), columns j0..j0+16, as one micro-panel
// dst[l*nr + q]; columns past n are zero.
func packB(tB bool, b []float32, ldb, p0, kb, j0, n int, dst []float32) {
	cols := min(nr, n-j0)
	dst = dst[:kb*nr]
	if cols < nr {
		clear(dst)
	}
	if tB { // B stored (n, k): element (l, j) at b[j*ldb+l]
		for q := range cols {
			src := b[(j0+q)*ldb+p0 : (j0+q)*ldb+p0+kb]
			for l, v := range src {
				dst[l*nr+q] = v
			}
		}
		return
	}
	for l := range kb {
		copy(dst[l*nr:l*nr+cols], b[(p0+l)*ldb+j0:(p0+l)*ldb+j0+cols])
	}
}
