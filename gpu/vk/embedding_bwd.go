package vk

import (
	"blip/gpu"
)

// embedding_bwd: shaders/embedding_bwd.comp. Rows of DY (and Ids) are taken
// in ranges that fit a binding, in order, and a table too large for one
// binding is bound in ranges of rows [lo, hi); within a dispatch the table
// rows are spread over buckets of workgroups (id % buckets) that each scan
// all ids in order, so every table element is summed sequentially in the
// order of the ids whatever the bucket count (which only sets the
// parallelism).
func init() {
	kernels["embedding_bwd"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		e := callAs[gpu.EmbeddingBackward](c)
		dim := int64(e.Dim)
		rowChunk, err := d.rowChunk("embedding_bwd", e.N, dim)
		if err != nil {
			return nil, err
		}
		vocabChunk, err := d.rowChunk("embedding_bwd", e.Vocab, dim)
		if err != nil {
			return nil, err
		}
		wg := int64(d.flatThreads())
		tiles := ceilDiv(dim, wg)
		var out []dispatch
		for r0 := 0; r0 < e.N; r0 += rowChunk {
			n := min(rowChunk, e.N-r0)
			ids := e.Ids.Slice(int64(r0), int64(n))
			dy := e.DY.Slice(int64(r0)*dim, int64(n)*dim)
			for lo := 0; lo < e.Vocab; lo += vocabChunk {
				hi := min(lo+vocabChunk, e.Vocab)
				table := e.DTable.Slice(int64(lo)*dim, int64(hi-lo)*dim)
				// Enough buckets to fill the device, no more than table
				// rows or ids.
				buckets := int64(256)
				if d.isCPU() {
					buckets = 16
				}
				buckets = max(1, min(buckets, int64(hi-lo), int64(n), d.maxGridGroups()/tiles))
				g, err := d.grid("embedding_bwd", buckets*tiles)
				if err != nil {
					return nil, err
				}
				out = append(out, dispatch{
					shader: "embedding_bwd",
					spec:   []uint32{uint32(wg)},
					binds:  []binding{rd(dy), rd(ids), wr(table)},
					push: []uint32{uint32(n), uint32(dim), d.elemOff(dy), d.elemOff(ids), d.elemOff(table),
						uint32(lo), uint32(hi), uint32(buckets)},
					groups: g,
				})
			}
		}
		return out, nil
	}
}
