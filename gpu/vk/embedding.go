package vk

import (
	"blip/gpu"
)

// embedding: shaders/embedding.comp. Rows of Y (and Ids) are split into
// ranges that fit a binding, and a table too large for one binding is bound
// in ranges of rows [lo, hi): each dispatch copies the ids that fall in its
// range, and the first one of each row range also writes the zero rows of
// out-of-range ids.
func init() {
	kernels["embedding"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		e := callAs[gpu.Embedding](c)
		dim := int64(e.Dim)
		rowChunk, err := d.rowChunk("embedding", e.N, dim)
		if err != nil {
			return nil, err
		}
		vocabChunk, err := d.rowChunk("embedding", e.Vocab, dim)
		if err != nil {
			return nil, err
		}
		wg := d.flatThreads()
		rowChunk = int(max(1, min(int64(rowChunk), d.maxGridGroups()*int64(wg)/dim)))
		var out []dispatch
		for r0 := 0; r0 < e.N; r0 += rowChunk {
			n := min(rowChunk, e.N-r0)
			ids := e.Ids.Slice(int64(r0), int64(n))
			y := e.Y.Slice(int64(r0)*dim, int64(n)*dim)
			for lo := 0; lo < e.Vocab; lo += vocabChunk {
				hi := min(lo+vocabChunk, e.Vocab)
				table := e.Table.Slice(int64(lo)*dim, int64(hi-lo)*dim)
				vec := dim%4 == 0 && d.elemOff(table)%4 == 0 && d.elemOff(y)%4 == 0
				threads := int64(n) * dim
				if vec {
					threads /= 4
				}
				g, err := d.grid("embedding", ceilDiv(threads, int64(wg)))
				if err != nil {
					return nil, err
				}
				out = append(out, dispatch{
					shader: "embedding",
					spec:   []uint32{wg, b2u(vec)},
					binds:  []binding{rd(table), rd(ids), wr(y)},
					push: []uint32{uint32(n), uint32(dim), d.elemOff(table), d.elemOff(ids), d.elemOff(y),
						uint32(lo), uint32(hi), uint32(e.Vocab), b2u(lo == 0)},
					groups: g,
				})
			}
		}
		return out, nil
	}
}
