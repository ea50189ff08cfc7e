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
// comparisons; attnOnePassOff (BLIP_ATTN_ONEPASS=0) keeps its chunk and
// combine passes in two dispatches.
var (
	attnSplitOff   = os.Getenv("BLIP_ATTN_SPLIT") == "0"
	attnOnePassOff = os.Getenv("BLIP_ATTN_ONEPASS") == "0"
)

// useSplit reports whether s takes the split-K path: few queries, F16 or
// not (fp16 decoding; ahead of the tensor-core attention, whose 64-row
// tiles would hold one query each). Keys
// that fit one chunk (a decoder's self-attention over its tokens so far)
// take one dispatch that writes the result directly (MODE 2), where the
// tiled kernel runs a mostly empty query tile per (batch, head): on
// lavapipe 0.19 ms against its 0.40 (`BLIP_ATTN_SPLIT=1|0 blip bench
// kernels --attention 1x12x1x21x64`, 0.17x and 0.14x PyTorch CPU's time
// in the same commands).
func useSplit(s gpu.AttentionShape) bool {
	return !attnSplitOff && s.Tq <= splitMaxRows
}

// scratchBuf returns a device buffer of at least n bytes for partial
// results (contents undefined), reusing the previous one when it is large
// enough. d.mu is held (inside Do).
func (d *Device) scratchBuf(n int64) (*buffer, error) { return d.growBuf(&d.scratch, n, false) }

// counterBuf returns a view of n u32 counters, zero between dispatches:
// gemm_rows_ln's finished workgroups per row block and
// attention_split_one's finished chunks per (batch, head). Every kernel
// sets the counters it used back to 0, and binds them for writing, so the
// recorder puts a barrier between two users.
func (d *Device) counterBuf(n int64) (gpu.View, error) {
	b, err := d.growBuf(&d.counters, 4*max(n, 64), true)
	if err != nil {
		return gpu.View{}, err
	}
	return gpu.View{Buf: b, Len: n, DType: gpu.I32}, nil
}

// growBuf returns *p when it holds at least n bytes, else a new buffer of
// at least twice its size (zeroed where asked) in its place; the replaced
// one is released after the work recorded with it (captures that bound it
// are recorded again).
func (d *Device) growBuf(p **buffer, n int64, zero bool) (*buffer, error) {
	if *p != nil && (*p).size >= n {
		return *p, nil
	}
	b, err := d.alloc(max(n, 2*scratchSize(*p)), zero)
	if err != nil {
		return nil, err
	}
	if *p != nil {
		d.free(*p)
	}
	*p = b
	return b, nil
}

func scratchSize(b *buffer) int64 {
	if b == nil {
		return 0
	}
	return b.size
}

// attentionSplit is the split-K path's dispatches: per chunk of nb batch
// entries, pass 0 over the key chunks and pass 1 over the query rows, or
// where the keys fit one chunk the direct pass alone (MODE 2, no partial
// records). With F16 (fp16 decoding) pass 3 first finds each chunk's
// maximum score, so that pass 0 rounds every probability after the shift
// by its row's final maximum, as gpu.Attention.F16 defines it. Pass 0
// and pass 1 run as one dispatch (MODE 4, attention_split_one.comp: the
// last chunk of each (batch, head) combines) unless O overlaps what the
// chunks read.
//
// With proj (gpu.QueryAttention's projection, fusesQuery) every pass runs
// attention_split_one_q.comp, which computes the queries from proj's A
// (bound where Q would be) and its weight and bias.
func attentionSplit(d *Device, a gpu.Attention, nb int, ts []attnTensorView, proj *gpu.Gemm) ([]dispatch, error) {
	s := a.AttentionShape
	ls := s.Layouts()
	chunks := int(ceilDiv(int64(s.Tk), splitChunk))
	type pass struct{ mode, grid int }
	passes := []pass{{0, chunks}, {1, s.Tq}}
	if a.F16 {
		passes = []pass{{3, chunks}, {0, chunks}, {1, s.Tq}}
	}
	var part gpu.View
	rec := int64(s.D + 2)
	if a.F16 {
		rec++ // the chunk maxima after the records: one float per record
	}
	onePass := !attnOnePassOff && !d.splitTwoPass && chunks > 1
	for _, v := range []gpu.View{a.Q, a.K, a.V, a.Mask} {
		onePass = onePass && !a.O.Overlaps(v)
	}
	if onePass {
		passes = []pass{{4, chunks}}
		if a.F16 {
			passes = []pass{{3, chunks}, {4, chunks}}
		}
	}
	if chunks == 1 {
		passes = []pass{{2, 1}}
	} else {
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
		part = gpu.View{Buf: sb, Len: partElems, DType: gpu.F32}
	}
	hasMask, hasLSE := a.Mask.Buf != nil, a.LSE.Buf != nil
	flags := attnFlags(s, hasMask, hasLSE)
	var out []dispatch
	for b0 := 0; b0 < s.B; b0 += nb {
		n := min(nb, s.B-b0)
		q, kk, v, o := ts[0].chunk(s, b0, n), ts[1].chunk(s, b0, n), ts[2].chunk(s, b0, n), ts[3].chunk(s, b0, n)
		mask, lse := attnMaskLSE(a, b0, n)
		vec := d.attnVec(s, ls, q, kk)
		var x gpu.View
		if proj != nil {
			// The rows of batches b0.. of the hidden states, (n, Tq, C);
			// Q is not read, so its offset does not decide K's loads.
			x = proj.A.Slice(int64(b0*s.Tq*proj.K), int64(n*s.Tq*proj.K))
			vec = d.attnVec(s, ls, kk)
		}
		var pv, cnt gpu.View
		if part.Buf != nil {
			pv = part.Slice(0, int64(n)*int64(s.H)*int64(s.Tq)*int64(chunks)*rec)
		}
		if onePass {
			var err error
			if cnt, err = d.counterBuf(int64(n) * int64(s.H)); err != nil {
				return nil, err
			}
		}
		for _, ps := range passes {
			d.attnGrid(ps.grid, s.H, func(x0, nx, head0, nhead int) {
				binds := []binding{rd(q), rd(kk), rd(v), wr(o), rd(mask), wr(lse), wr(pv)}
				switch ps.mode {
				case 0, 3:
					binds[3], binds[5] = wr(gpu.View{}), wr(gpu.View{})
				case 1:
					binds[0], binds[1], binds[2], binds[4], binds[6] = rd(gpu.View{}), rd(gpu.View{}), rd(gpu.View{}), rd(gpu.View{}), rd(pv)
				}
				push := []uint32{uint32(s.Tq), uint32(s.Tk), uint32(s.H), uint32(s.D),
					offIfSet(d, q), offIfSet(d, kk), offIfSet(d, v), offIfSet(d, o), offIfSet(d, mask), offIfSet(d, lse), 0,
					uint32(ls[0].Tok), uint32(ls[1].Tok), uint32(ls[2].Tok), uint32(ls[3].Tok),
					uint32(ls[0].Batch), uint32(ls[1].Batch), uint32(ls[2].Batch), uint32(ls[3].Batch),
					f32bits(s.ScaleValue()), flags, uint32(chunks), uint32(head0), uint32(x0)}
				spec := []uint32{splitChunk, splitMaxRows, uint32(ps.mode), b2u(vec), b2u(a.F16)}
				// attention_split_one(_q) binds the counters (unset outside
				// MODE 4) and takes their offset.
				shader := "attention_split"
				switch {
				case proj != nil:
					shader = "attention_split_one_q"
				case ps.mode == 4:
					shader = "attention_split_one"
				}
				if shader != "attention_split" {
					binds = append(binds, wr(cnt))
					push = append(push, offIfSet(d, cnt))
				}
				if proj != nil {
					// X in Q's binding and push constants: its offset, row
					// stride and batch stride.
					const pOffQ, pTokQ, pBatQ = 4, 11, 15
					_, _, ldb, _, _, _, _ := proj.Dims()
					binds[0] = rd(x)
					binds = append(binds, rd(proj.B), rd(proj.Bias))
					push[pOffQ], push[pTokQ], push[pBatQ] = d.elemOff(x), uint32(proj.K), uint32(s.Tq*proj.K)
					push = append(push, d.elemOff(proj.B), offIfSet(d, proj.Bias), uint32(proj.K), uint32(ldb), b2u(proj.Bias.Buf != nil))
					spec = append(spec, dtCode(proj.B.DType), b2u(proj.F16))
				}
				out = append(out, dispatch{
					shader: shader,
					spec:   spec,
					binds:  binds,
					push:   push,
					groups: [3]uint32{uint32(nx), uint32(nhead), uint32(n)},
				})
			})
		}
	}
	return out, nil
}
