package vk

import (
	"blip/gpu"
)

// topkLeaves is the number of leaves of topk.comp's tournament tree (shared
// memory: 8 bytes per node, 2*leaves nodes).
const topkLeaves = 1024

// topk: shaders/topk.comp, one workgroup per row, rows split into ranges
// that fit a binding.
func init() {
	kernels["topk"] = func(d *Device, c gpu.Call) ([]dispatch, error) {
		t := callAs[gpu.TopK](c)
		cols, k := int64(t.Cols), int64(t.K)
		chunk, err := d.rowChunk("topk", t.Rows, cols)
		if err != nil {
			return nil, err
		}
		leaves := uint32(topkLeaves)
		for leaves > 64 && int(leaves)*16 > d.info.SharedMemBytes {
			leaves /= 2
		}
		wg := d.rowThreads()
		var out []dispatch
		for r0 := 0; r0 < t.Rows; r0 += chunk {
			n := min(chunk, t.Rows-r0)
			x := t.X.Slice(int64(r0)*cols, int64(n)*cols)
			vals := t.Vals.Slice(int64(r0)*k, int64(n)*k)
			idx := t.Idx.Slice(int64(r0)*k, int64(n)*k)
			g, err := d.grid("topk", int64(n))
			if err != nil {
				return nil, err
			}
			out = append(out, dispatch{
				shader: "topk",
				spec:   []uint32{wg, leaves},
				binds:  []binding{rd(x), wr(vals), wr(idx)},
				push:   []uint32{uint32(n), uint32(cols), uint32(k), d.elemOff(x), d.elemOff(vals), d.elemOff(idx)},
				groups: g,
			})
		}
		return out, nil
	}
}
