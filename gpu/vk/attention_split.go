package vk

import (
	"os"

	"blip/gpu"
)

// Split-K attention for decoding (shaders/attention_split.comp): with a
// few queries per (batch, head) the tiled kernel runs B*H workgroups, each
// walking all Tk keys alone, which leaves a GPU mostly idle during caption
// decoding (B*H = 36 at beam 3; Tk = 577 image tokens in cross-attention).
// Splitting the keys into chunks gives B*H*ceil(Tk/chunk) workgroups, then
// a small pass combines the chunks (the online-softmax merge). The partial
// results live in a device-owned scratch buffer that grows as needed.

const (
	splitMaxRows = 4  // most queries per (batch, head) that take this path
	splitChunk   = 64 // keys per chunk (and invocations per workgroup)
)

// attnSplitOff turns the split path off (BLIP_ATTN_SPLIT=0), for
// comparisons.
var attnSplitOff = os.Getenv("BLIP_ATTN_SPLIT") == "0"

// useSplit reports whether s takes the split-K path: few queries, at least
// two chunks of keys.
func useSplit(s gpu.AttentionShape) bool {
	return !attnSplitOff && s.Tq <= splitMaxRows && s.Tk >= 2*splitChunk
}

// scratchBuf returns a device buffer of at least n bytes for partial
// results (contents undefined), reusing the previous one when it is large
// enough. d.mu is held (inside Do); a replaced buffer is released after
// the work recorded with it.
func (d *Device) scratchBuf(n int64) (*buffer, error) {
	if d.scratch != nil && d.scratch.size >= n {
		return d.scratch, nil
	}
	b, err := d.alloc(max(n, 2*scratchSize(d.scratch)), false)
	if err != nil {
		return nil, err
	}
	if d.scratch != nil {
		d.free(d.scratch)
	}
	d.scratch = b
	return b, nil
}

func scratchSize(b *buffer) int64 {
	if b == nil {
		return 0
	}
	return b.size
}

func attentionSplit(d *Device, a gpu.Attention, nb int, ts []attnTensorView) ([]dispatch, error) {
	s := a.AttentionShape
	ls := s.Layouts()
	chunks := int(ceilDiv(int64(s.Tk), splitChunk))
	rec := int64(s.D + 2)
	partElems := int64(nb) * int64(s.H) * int64(s.Tq) * int64(chunks) * rec
	// One dispatch's partial records must fit a binding too.
	for nb > 1 && partElems*4 > d.bindLimit() {
		nb = (nb + 1) / 2
		partElems = int64(nb) * int64(s.H) * int64(s.Tq) * int64(chunks) * rec
	}
	sb, err := d.scratchBuf(partElems * 4)
	if err != nil {
		return nil, err
	}
	part := gpu.View{Buf: sb, Len: partElems, DType: gpu.F32}
	hasMask, hasLSE := a.Mask.Buf != nil, a.LSE.Buf != nil
	flags := attnFlags(s, hasMask, hasLSE)
	var out []dispatch
	for b0 := 0; b0 < s.B; b0 += nb {
		n := min(nb, s.B-b0)
		q, kk, v, o := ts[0].chunk(s, b0, n), ts[1].chunk(s, b0, n), ts[2].chunk(s, b0, n), ts[3].chunk(s, b0, n)
		mask, lse := attnMaskLSE(a, b0, n)
		vec := d.attnVec(s, ls, q, kk)
		pv := part.Slice(0, int64(n)*int64(s.H)*int64(s.Tq)*int64(chunks)*rec)
		for mode, rows := range []int{chunks, s.Tq} {
			d.attnGrid(rows, s.H, func(x0, nx, head0, nhead int) {
				binds := []binding{rd(q), rd(kk), rd(v), wr(o), rd(mask), wr(lse), wr(pv)}
				if mode == 0 {
					binds[3], binds[5] = wr(gpu.View{}), wr(gpu.View{})
				} else {
					binds[0], binds[1], binds[2], binds[4], binds[6] = rd(gpu.View{}), rd(gpu.View{}), rd(gpu.View{}), rd(gpu.View{}), rd(pv)
				}
				out = append(out, dispatch{
					shader: "attention_split",
					spec:   []uint32{splitChunk, splitMaxRows, uint32(mode), b2u(vec)},
					binds:  binds,
					push: []uint32{uint32(s.Tq), uint32(s.Tk), uint32(s.H), uint32(s.D),
						offIfSet(d, q), offIfSet(d, kk), offIfSet(d, v), offIfSet(d, o), offIfSet(d, mask), offIfSet(d, lse), 0,
						uint32(ls[0].Tok), uint32(ls[1].Tok), uint32(ls[2].Tok), uint32(ls[3].Tok),
						uint32(ls[0].Batch), uint32(ls[1].Batch), uint32(ls[2].Batch), uint32(ls[3].Batch),
						f32bits(s.ScaleValue()), flags, uint32(chunks), uint32(head0), uint32(x0)},
					groups: [3]uint32{uint32(nx), uint32(nhead), uint32(n)},
				})
			})
		}
	}
	return out, nil
}
