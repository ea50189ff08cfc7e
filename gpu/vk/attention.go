package vk

import (
	"fmt"
	"os"

	"blip/gpu"
)

// attention and attention_bwd: shaders/attention.comp (one dispatch) and
// shaders/attention_bwd.comp (a dQ pass, then a dK+dV pass, or separate dV
// and dK passes when DK and DV cannot share one binding: the runtime takes 8
// bindings). Tile sizes are specialization constants picked per device so
// that the shared memory fits (48 KiB on NVIDIA, 32 KiB on lavapipe); calls
// are split by batch so that no binding exceeds maxBind, and by query/key
// tiles and heads to stay within the grid. Nothing is allocated: the
// memory used is the shaders' shared tiles, independent of Tq and Tk.
// Calls with F16 run on attention_coop.comp and attention_coop_bwd.comp
// where the device has the tensor-core GEMM (attention_coop.go,
// attention_coop_bwd.go), otherwise on the F16 specializations of
// attention.comp and attention_bwd.comp; decoding's few queries (F16 or
// not) on attention_split.comp (attention_split.go). 16-bit Q, K, V or O
// (the encoders' 16-bit activations) run on attention_h.comp, or on the
// tensor-core kernel where they are f16.

func init() {
	kernels["attention"] = attentionKernel
	kernels["attention_bwd"] = attentionBwdKernel
}

// attnTile is a tile configuration: rows is the number of rows a workgroup
// owns (queries in the forward and the dQ pass, keys in the dK/dV pass; 4
// per row group of 8 invocations), cols the width of the tiles it walks.
type attnTile struct {
	rows, cols uint32
}

func (t attnTile) threads() uint32 { return 2 * t.rows }

// attnFwdShared is the shared memory of attention.comp (its declarations),
// counting the reduction buffer of the no-shuffle variant.
func attnFwdShared(t attnTile, dp uint32) int {
	br, bc := int(t.rows), int(t.cols)
	vec4s := int(dp)*br/4 + bc*(int(dp)/4+1) + bc*int(dp)/4 + bc*(br/4+1) + int(t.threads())
	return 16*vec4s + 4*bc
}

// attnBwdShared is the shared memory of attention_bwd.comp, likewise.
func attnBwdShared(t attnTile, dp uint32) int {
	rw, cw := int(t.rows), int(t.cols)
	vec4s := 2*int(dp)*rw/4 + 2*cw*(int(dp)/4+1) + 2*cw*(rw/4+1) + int(t.threads())
	return 16*vec4s + 8*cw
}

// Tile configurations, preferred first (for the backward: the dQ pass's
// {query rows, key tile} and the dK/dV pass's {key rows, query tile}).
var attnFwdTiles = []attnTile{{64, 32}, {64, 64}, {32, 32}, {32, 16}, {16, 16}, {16, 8}, {8, 8}, {4, 8}}
var attnBwdTiles = []attnTile{{32, 32}, {64, 16}, {32, 16}, {16, 16}, {16, 8}, {8, 8}, {4, 8}}

// pickAttnTile returns the first tile of list that fits the device's shared
// memory and has at most maxRows rows (the first fitting one otherwise). env
// ("rows,cols") overrides it where it is valid and fits.
func (d *Device) pickAttnTile(kernel string, list []attnTile, shared func(attnTile, uint32) int, dp uint32, maxRows int, env string) (attnTile, error) {
	limit := d.info.SharedMemBytes
	if v := os.Getenv(env); v != "" {
		var t attnTile
		if n, _ := fmt.Sscanf(v, "%d,%d", &t.rows, &t.cols); n == 2 && t.rows%4 == 0 && t.cols%8 == 0 && t.rows > 0 && t.cols > 0 &&
			t.threads() <= 1024 && shared(t, dp) <= limit {
			return t, nil
		}
	}
	var fit []attnTile
	for _, t := range list {
		if shared(t, dp) <= limit {
			fit = append(fit, t)
		}
	}
	if len(fit) == 0 {
		return attnTile{}, fmt.Errorf("%s: head dimension %d needs more shared memory than the device's %d bytes", kernel, dp, limit)
	}
	for _, t := range fit {
		if int(t.rows) <= maxRows {
			return t, nil
		}
	}
	return fit[len(fit)-1], nil
}

// rowCap is the tile height worth using for n rows: 16, 32 or more.
func rowCap(n int) int {
	c := 16
	for c < n && c < 64 {
		c *= 2
	}
	return c
}

func (d *Device) attnShuffle() uint32 {
	if d.info.SubgroupSize < 8 || os.Getenv("BLIP_ATTN_NOSHUF") == "1" {
		return 0
	}
	return 1
}

// attnSpan is the elements nb batches of a (T, H, D) tensor cover.
func attnSpan(s gpu.AttentionShape, l gpu.AttentionLayout, nb, t int) int64 {
	return int64(nb-1)*l.Batch + int64(t-1)*l.Tok + int64(s.H)*int64(s.D)
}

// attnTensorView is one (B, T, H, D) operand: its view and layout.
type attnTensorView struct {
	name string
	v    gpu.View
	l    gpu.AttentionLayout
	t    int
}

// chunk returns the view of batches b0 .. b0+nb-1.
func (x attnTensorView) chunk(s gpu.AttentionShape, b0, nb int) gpu.View {
	return x.v.Slice(int64(b0)*x.l.Batch, attnSpan(s, x.l, nb, x.t))
}

// attnBatches is how many batches one dispatch may cover: every operand's
// span within a binding and the count within the grid.
func (d *Device) attnBatches(kernel string, s gpu.AttentionShape, ts []attnTensorView) (int, error) {
	limit := d.limitElems()
	fits := func(nb int) bool {
		for _, x := range ts {
			if attnSpan(s, x.l, nb, x.t) > limit {
				return false
			}
		}
		return int64(nb)*int64(s.H)*int64(max(s.Tq, s.Tk)) <= limit // LSE, Mask
	}
	nb := min(s.B, int(d.maxGroups[2]))
	for nb > 1 && !fits(nb) {
		nb = (nb + 1) / 2
	}
	if !fits(nb) {
		for _, x := range ts {
			if n := attnSpan(s, x.l, 1, x.t) * 4; n > d.bindLimit() {
				return 0, fmt.Errorf("%s: one batch of %s (%v) spans %d bytes, over the device's storage-buffer binding limit of %d bytes", kernel, x.name, s, n, d.maxBind)
			}
		}
		return 0, fmt.Errorf("%s: one batch of (%v) exceeds the device's storage-buffer binding limit of %d bytes", kernel, s, d.maxBind)
	}
	return nb, nil
}

// attnVec reports whether the shaders may use vec4 global accesses: D, the
// strides and the binding offsets all multiples of 4.
func (d *Device) attnVec(s gpu.AttentionShape, ls [4]gpu.AttentionLayout, views ...gpu.View) bool {
	if s.D%4 != 0 {
		return false
	}
	for _, l := range ls {
		if l.Tok%4 != 0 || (s.B > 1 && l.Batch%4 != 0) {
			return false
		}
	}
	for _, v := range views {
		if v.Buf != nil && d.elemOff(v)%4 != 0 {
			return false
		}
	}
	return true
}

// attnGrid splits rowTiles x H workgroups into dispatch grids within the
// device limits: it calls f with the first tile and head of each.
func (d *Device) attnGrid(rowTiles, heads int, f func(tile0, ntile, head0, nhead int)) {
	mx, my := int(d.maxGroups[0]), int(d.maxGroups[1])
	for h0 := 0; h0 < heads; h0 += my {
		for t0 := 0; t0 < rowTiles; t0 += mx {
			f(t0, min(mx, rowTiles-t0), h0, min(my, heads-h0))
		}
	}
}

// attnMaskLSE returns the mask and LSE views of batches b0..b0+n-1 (unset
// views where the call has none).
func attnMaskLSE(a gpu.Attention, b0, n int) (mask, lse gpu.View) {
	s := a.AttentionShape
	if a.Mask.Buf != nil {
		mask = a.Mask.Slice(int64(b0)*int64(s.Tk), int64(n)*int64(s.Tk))
	}
	if a.LSE.Buf != nil {
		lse = a.LSE.Slice(int64(b0)*int64(s.H)*int64(s.Tq), int64(n)*int64(s.H)*int64(s.Tq))
	}
	return mask, lse
}

func attnFlags(s gpu.AttentionShape, mask, lse bool) uint32 {
	return b2u(mask) | b2u(s.Causal)<<1 | b2u(lse)<<2
}

func attentionKernel(d *Device, c gpu.Call) ([]dispatch, error) {
	const k = "attention"
	a := callAs[gpu.Attention](c)
	if err := d.need16(k, a.Q, a.O); err != nil {
		return nil, err
	}
	s := a.AttentionShape
	ls := s.Layouts()
	dp := uint32((s.D + 31) / 32 * 32)
	t, err := d.pickAttnTile(k, attnFwdTiles, attnFwdShared, dp, rowCap(s.Tq), "BLIP_ATTN_FWD")
	if err != nil {
		return nil, err
	}
	ts := []attnTensorView{{"Q", a.Q, ls[0], s.Tq}, {"K", a.K, ls[1], s.Tk}, {"V", a.V, ls[2], s.Tk}, {"O", a.O, ls[3], s.Tq}}
	nb, err := d.attnBatches(k, s, ts)
	if err != nil {
		return nil, err
	}
	// Decoding's few queries take the split kernel, F16 too (fp16
	// decoding): the tensor-core kernel gives each (batch, head) one
	// workgroup for a 64-row tile that holds one query.
	if useSplit(s) && a.O.DType == gpu.F32 && a.Q.DType == gpu.F32 {
		return attentionSplit(d, a, nb, ts, nil)
	}
	if d.useAttnCM2(a) {
		return attentionCM2(d, a, nb, ts)
	}
	if d.useAttnCoop(a) {
		return attentionCoop(d, a, nb, ts), nil
	}
	tiles := int(ceilDiv(int64(s.Tq), int64(t.rows)))
	half := a.O.DType != gpu.F32 || a.Q.DType != gpu.F32
	shader := "attention"
	if half {
		shader = "attention_h" // 16-bit activations: O's and Q's types the last constants
	}
	return d.attnDispatches(a, nb, ts, tiles, shader, func(q, kk, v, o gpu.View) []uint32 {
		vec := d.attnVec(s, ls, q, kk, v, o)
		spec := []uint32{t.threads(), t.rows, t.cols, dp, b2u(vec), d.attnShuffle(), b2u(a.F16)}
		if half {
			spec = append(spec, dtCode(a.O.DType), dtCode(a.Q.DType))
		}
		return spec
	}), nil
}

// attnDispatches are a forward attention's dispatches of shader, with
// attention.comp's push constants: per chunk of nb batch entries (its views
// giving the specialization constants), a grid of query tiles by heads.
func (d *Device) attnDispatches(a gpu.Attention, nb int, ts []attnTensorView, tiles int, shader string, spec func(q, kk, v, o gpu.View) []uint32) []dispatch {
	s := a.AttentionShape
	ls := s.Layouts()
	flags := attnFlags(s, a.Mask.Buf != nil, a.LSE.Buf != nil)
	var out []dispatch
	for b0 := 0; b0 < s.B; b0 += nb {
		n := min(nb, s.B-b0)
		q, kk, v, o := ts[0].chunk(s, b0, n), ts[1].chunk(s, b0, n), ts[2].chunk(s, b0, n), ts[3].chunk(s, b0, n)
		mask, lse := attnMaskLSE(a, b0, n)
		sp := spec(q, kk, v, o)
		d.attnGrid(tiles, s.H, func(tile0, ntile, head0, nhead int) {
			out = append(out, dispatch{
				shader: shader,
				spec:   sp,
				binds:  []binding{rd(q), rd(kk), rd(v), wr(o), rd(mask), wr(lse)},
				push: []uint32{uint32(s.Tq), uint32(s.Tk), uint32(s.H), uint32(s.D),
					d.elemOff(q), d.elemOff(kk), d.elemOff(v), d.elemOff(o), offIfSet(d, mask), offIfSet(d, lse),
					uint32(ls[0].Tok), uint32(ls[1].Tok), uint32(ls[2].Tok), uint32(ls[3].Tok),
					uint32(ls[0].Batch), uint32(ls[1].Batch), uint32(ls[2].Batch), uint32(ls[3].Batch),
					f32bits(s.ScaleValue()), flags, uint32(tile0), uint32(head0)},
				groups: [3]uint32{uint32(ntile), uint32(nhead), uint32(n)},
			})
		})
	}
	return out
}

// Passes of attention_bwd.comp (its MODE).
const (
	attnModeDQ  = 0
	attnModeDKV = 1
	attnModeDV  = 2
	attnModeDK  = 3
)

func attentionBwdKernel(d *Device, c gpu.Call) ([]dispatch, error) {
	const k = "attention_bwd"
	a := callAs[gpu.AttentionBackward](c)
	if err := d.need16(k, a.Q); err != nil {
		return nil, err
	}
	s := a.AttentionShape
	ls := s.Layouts()
	dp := uint32((s.D + 31) / 32 * 32)
	tq, err := d.pickAttnTile(k, attnBwdTiles, attnBwdShared, dp, rowCap(s.Tq), "BLIP_ATTN_DQ")
	if err != nil {
		return nil, err
	}
	tk, err := d.pickAttnTile(k, attnBwdTiles, attnBwdShared, dp, rowCap(s.Tk), "BLIP_ATTN_DKV")
	if err != nil {
		return nil, err
	}
	ts := []attnTensorView{
		{"Q", a.Q, ls[0], s.Tq}, {"K", a.K, ls[1], s.Tk}, {"V", a.V, ls[2], s.Tk}, {"O", a.O, ls[3], s.Tq},
		{"DO", a.DO, ls[3], s.Tq}, {"DQ", a.DQ, ls[0], s.Tq}, {"DK", a.DK, ls[1], s.Tk}, {"DV", a.DV, ls[2], s.Tk},
	}
	nb, err := d.attnBatches(k, s, ts)
	if err != nil {
		return nil, err
	}
	if d.useAttnCoopBwd(a) {
		return attentionCoopBwd(d, a, nb, ts), nil
	}
	shuf := d.attnShuffle()
	shader := "attention_bwd"
	if a.Q.DType != gpu.F32 {
		shader = "attention_bwd_h" // 16-bit Q, K, V: their type the last constant
	}
	return d.attnBwdDispatches(a, nb, ts, shader, tq, tk, func(mode uint32, t attnTile, vec bool) ([]uint32, uint32) {
		spec := []uint32{t.threads(), t.cols, t.rows, dp, b2u(vec), shuf, mode, b2u(a.F16)}
		if mode == attnModeDQ {
			spec[1], spec[2] = t.rows, t.cols // BR = owned query rows, BC = key tile
		}
		if a.Q.DType != gpu.F32 {
			spec = append(spec, dtCode(a.Q.DType))
		}
		return spec, 0
	}), nil
}

// attnBwdDispatches are a backward attention's dispatches of shader with
// attention_bwd.comp's bindings and push constants: per chunk of nb batch
// entries, a dQ pass (tiles of tq.rows queries), then a dK+dV pass (tiles of
// tk.rows keys) where DK and DV fit one binding, else a dV and a dK pass.
// spec gives a pass's specialization constants, and flags to add to the
// push constants', from its mode (attnModeDQ ...), tile and whether the
// chunk's views allow vec4 accesses (attnVec). A dV pass has its offset
// in both offOut and offOut2.
func (d *Device) attnBwdDispatches(a gpu.AttentionBackward, nb int, ts []attnTensorView, shader string, tq, tk attnTile, spec func(mode uint32, t attnTile, vec bool) ([]uint32, uint32)) []dispatch {
	s := a.AttentionShape
	ls := s.Layouts()
	hasMask := a.Mask.Buf != nil
	flags := attnFlags(s, hasMask, false)
	limit := d.limitElems()
	var out []dispatch
	for b0 := 0; b0 < s.B; b0 += nb {
		n := min(nb, s.B-b0)
		var vs [8]gpu.View
		for i := range ts {
			vs[i] = ts[i].chunk(s, b0, n)
		}
		q, kk, v, o, do, dq, dk, dv := vs[0], vs[1], vs[2], vs[3], vs[4], vs[5], vs[6], vs[7]
		lse := a.LSE.Slice(int64(b0)*int64(s.H)*int64(s.Tq), int64(n)*int64(s.H)*int64(s.Tq))
		var mask gpu.View
		if hasMask {
			mask = a.Mask.Slice(int64(b0)*int64(s.Tk), int64(n)*int64(s.Tk))
		}
		vec := d.attnVec(s, ls, vs[:]...)
		pass := func(mode uint32, t attnTile, rows int, outv gpu.View, off, off2 uint32) {
			sp, fl := spec(mode, t, vec)
			tiles := int(ceilDiv(int64(rows), int64(t.rows)))
			d.attnGrid(tiles, s.H, func(tile0, ntile, head0, nhead int) {
				out = append(out, dispatch{
					shader: shader,
					spec:   sp,
					binds:  []binding{rd(q), rd(kk), rd(v), rd(o), rd(do), rd(lse), rd(mask), wr(outv)},
					push: []uint32{uint32(s.Tq), uint32(s.Tk), uint32(s.H), uint32(s.D),
						d.elemOff(q), d.elemOff(kk), d.elemOff(v), d.elemOff(o), d.elemOff(do), d.elemOff(lse), offIfSet(d, mask), off, off2,
						uint32(ls[0].Tok), uint32(ls[1].Tok), uint32(ls[2].Tok), uint32(ls[3].Tok),
						uint32(ls[0].Batch), uint32(ls[1].Batch), uint32(ls[2].Batch), uint32(ls[3].Batch),
						f32bits(s.ScaleValue()), flags | fl, uint32(tile0), uint32(head0)},
					groups: [3]uint32{uint32(ntile), uint32(nhead), uint32(n)},
				})
			})
		}
		pass(attnModeDQ, tq, s.Tq, dq, d.elemOff(dq), 0)
		// DK and DV through one binding when they share a buffer closely
		// enough; otherwise a dV pass and a dK pass.
		if dk.Buf == dv.Buf {
			lo, hi := min(dk.Off, dv.Off), max(dk.Off+dk.Len, dv.Off+dv.Len)
			if hi-lo <= limit {
				u := gpu.View{Buf: dk.Buf, Off: lo, Len: hi - lo, DType: dk.DType}
				base := d.elemOff(u)
				if !vec || (base+uint32(dk.Off-lo))%4 == 0 && (base+uint32(dv.Off-lo))%4 == 0 {
					pass(attnModeDKV, tk, s.Tk, u, base+uint32(dk.Off-lo), base+uint32(dv.Off-lo))
					continue
				}
			}
		}
		pass(attnModeDV, tk, s.Tk, dv, d.elemOff(dv), d.elemOff(dv))
		pass(attnModeDK, tk, s.Tk, dk, d.elemOff(dk), 0)
	}
	return out
}
