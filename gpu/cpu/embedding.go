package cpu

import (
	"blip/gpu"
)

// embedding: Y[i, :] = Table[Ids[i], :]; an id outside [0, Vocab) gives a
// zero row.
func embedding(e gpu.Embedding) {
	n, dim, vocab := e.N, e.Dim, e.Vocab
	table, ids, y := u32(e.Table), i32(e.Ids), u32(e.Y)
	parallel(n, int64(n)*int64(dim), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yr := y[i*dim : (i+1)*dim]
			id := int(ids[i])
			if id < 0 || id >= vocab {
				clear(yr)
				continue
			}
			copy(yr, table[id*dim:(id+1)*dim])
		}
	})
}
