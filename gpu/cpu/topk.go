package cpu

import (
	"slices"

	"blip/gpu"
)

// topK: the K largest values of each row in descending order, with their
// column indices. The order is total: numbers before NaNs, larger before
// smaller, then lower index first (so -0 and +0 are equal, and NaNs come
// last in index order).
//
// Each row keeps a binary min-heap of the K best seen so far: O(Cols log K).
func topK(t gpu.TopK) {
	rows, cols, k := t.Rows, t.Cols, t.K
	x, vals, idx := f32(t.X), f32(t.Vals), i32(t.Idx)
	parallel(rows, int64(rows)*int64(cols)*4, func(r0, r1 int) {
		heap := make([]int32, 0, k)
		for r := r0; r < r1; r++ {
			row := x[r*cols : (r+1)*cols]
			// better reports whether column i ranks before column j.
			better := func(i, j int32) bool {
				vi, vj := row[i], row[j]
				ni, nj := vi != vi, vj != vj
				switch {
				case ni != nj:
					return nj
				case ni || vi == vj:
					return i < j
				}
				return vi > vj
			}
			heap = heap[:0]
			// heap[0] is the worst of the kept columns.
			down := func(p int) {
				for {
					c := 2*p + 1
					if c >= len(heap) {
						return
					}
					if c+1 < len(heap) && better(heap[c], heap[c+1]) {
						c++
					}
					if !better(heap[p], heap[c]) {
						return
					}
					heap[p], heap[c] = heap[c], heap[p]
					p = c
				}
			}
			for j := range int32(cols) {
				if len(heap) < k {
					heap = append(heap, j)
					for c := len(heap) - 1; c > 0; {
						p := (c - 1) / 2
						if !better(heap[p], heap[c]) {
							break
						}
						heap[p], heap[c] = heap[c], heap[p]
						c = p
					}
					continue
				}
				if better(j, heap[0]) {
					heap[0] = j
					down(0)
				}
			}
			slices.SortFunc(heap, func(i, j int32) int {
				if better(i, j) {
					return -1
				}
				return 1
			})
			vr, ir := vals[r*k:(r+1)*k], idx[r*k:(r+1)*k]
			for i, j := range heap {
				vr[i], ir[i] = row[j], j
			}
		}
	})
}
