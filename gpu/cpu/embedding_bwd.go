package cpu

import (
	"blip/gpu"
)

func init() {
	twins["embedding_bwd"] = func(c gpu.Call) { embeddingBackward(c.(gpu.EmbeddingBackward)) }
}

// embeddingBackward: DTable[Ids[i], :] += DY[i, :] for i in order, in f32 (so
// the result is bit-identical to the shader's, which adds in the same
// order). Columns are split between goroutines; ids outside [0, Vocab) are
// skipped.
func embeddingBackward(e gpu.EmbeddingBackward) {
	n, dim, vocab := e.N, e.Dim, e.Vocab
	dy, ids, table := f32(e.DY), i32(e.Ids)[:n], f32(e.DTable)
	parallel(dim, int64(n)*int64(dim), func(c0, c1 int) {
		for i, id := range ids {
			if id < 0 || int(id) >= vocab {
				continue
			}
			tr := table[int(id)*dim+c0 : int(id)*dim+c1]
			for j, v := range dy[i*dim+c0 : i*dim+c1] {
				tr[j] += v
			}
		}
	})
}
