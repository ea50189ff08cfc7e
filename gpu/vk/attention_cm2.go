package vk

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"blip/gpu"
)

// Attention with F16 on NVIDIA's cooperative matrix 2
// (shaders/attention_cm2.comp), where gemm_cm2 runs (BLIP_COOPMAT2=1 on a
// device that offers it): Q, K and V are cast to f16 in the device
// scratch (a fused QKV tensor once), then one workgroup per BR queries of
// a (batch, head) makes the two passes gpu.Attention.F16 asks for. Every
// layout, mask, causal shape and LSE of gpu.Attention is taken; head
// dimensions up to 128, zero-padded to the device's granularity. Decoding's
// few queries keep the split kernel (attention_split.go). Opt-in and untested
// on hardware as gemm_cm2 is (gemm_cm2.go).

// attnCM2MaxD is the largest head dimension attention_cm2 takes.
const attnCM2MaxD = 128

// attnCM2TileEnv forces a block, "WGxBRxBC" (BLIP_ATTN_CM2_TILE, for
// measuring); it must be one the device lists.
var attnCM2TileEnv = os.Getenv("BLIP_ATTN_CM2_TILE")

// attnCM2Tile is an attention_cm2 block: WG invocations, BR queries, keys
// in tiles of BC, head dimension D (padded).
type attnCM2Tile struct{ wg, br, bc, d uint32 }

// attnCM2Tiles are the blocks tried, in order (D filled in per call).
var attnCM2Tiles = []attnCM2Tile{{wg: 128, br: 64, bc: 64}, {wg: 256, br: 128, bc: 64}, {wg: 256, br: 64, bc: 64}}

// fitsAttn reports whether the device lists granularities for every product of
// block t: Q K^T (BR x D by D x BC) and P V (BR x BC by BC x D).
func (c *cm2Caps) fitsAttn(t attnCM2Tile) bool {
	g, ok := c.gran[t.wg]
	if !ok || t.wg > c.maxWG || max(t.br, t.bc, t.d) > c.maxDim || g[0] == 0 || g[1] == 0 || g[2] == 0 {
		return false
	}
	return t.br%g[0] == 0 && t.bc%g[1] == 0 && t.d%g[2] == 0 && t.d%g[1] == 0 && t.bc%g[2] == 0
}

// errNoAttnCM2Tile: the device lists none of attention_cm2's blocks for
// a head dimension (the call keeps the KHR kernel).
var errNoAttnCM2Tile = errors.New("no attention_cm2 block listed")

// attnCM2Tile is the block for head dimension dh: the first listed one,
// with D padded to a multiple of the granularities, or the one
// BLIP_ATTN_CM2_TILE forces (an error where it is malformed or not
// listed).
func (d *Device) attnCM2Tile(dh int) (attnCM2Tile, error) {
	tiles := attnCM2Tiles
	if attnCM2TileEnv != "" {
		v, err := parseBlock("BLIP_ATTN_CM2_TILE", attnCM2TileEnv, "WGxBRxBC, e.g. 128x64x64", 3)
		if err != nil {
			return attnCM2Tile{}, err
		}
		tiles = []attnCM2Tile{{wg: v[0], br: v[1], bc: v[2]}}
	}
	for _, t := range tiles {
		g := d.cm2.gran[t.wg]
		unit := max(g[1], g[2], 1)
		t.d = (uint32(dh) + unit - 1) / unit * unit
		if d.cm2.fitsAttn(t) {
			return t, nil
		}
	}
	if attnCM2TileEnv != "" {
		return attnCM2Tile{}, fmt.Errorf("BLIP_ATTN_CM2_TILE=%s: %s does not list that block for head dimension %d", attnCM2TileEnv, d.info.Name, dh)
	}
	return attnCM2Tile{}, errNoAttnCM2Tile
}

// useAttnCM2 reports whether a runs on attention_cm2 (a malformed
// BLIP_ATTN_CM2_TILE too, so that attentionCM2 reports it).
func (d *Device) useAttnCM2(a gpu.Attention) bool {
	if d.cm2 == nil || !a.F16 || a.O.DType != gpu.F32 || a.Q.DType != gpu.F32 || attnCoopOff || a.D > attnCM2MaxD || !attnCM2Aligned(a) {
		return false
	}
	_, err := d.attnCM2Tile(a.D)
	return !errors.Is(err, errNoAttnCM2Tile)
}

// attnCM2Aligned reports whether every (batch, head) tensor attention_cm2
// loads or stores starts on 16 bytes, as the tensor loads and stores
// require of their base (gemm_cm2.go, cm2Aligned): the f16 copies of Q,
// K and V keep their views' offsets from 8-element boundaries (a fused
// QKV's parts stay where they are relative to each other), so those
// offsets, the batch strides and D must be multiples of 8 elements; O is
// written in place.
func attnCM2Aligned(a gpu.Attention) bool {
	ls := a.Layouts()
	for i, v := range []gpu.View{a.Q, a.K, a.V} {
		if v.Off%8 != 0 || ls[i].Batch%8 != 0 {
			return false
		}
	}
	return a.D%8 == 0 && a.O.ByteOff()%16 == 0 && ls[3].Batch%4 == 0
}

// attentionCM2 is the casts of Q, K and V, then attention_cm2's
// dispatches (attention.comp's push constants and grid).
func attentionCM2(d *Device, a gpu.Attention, nb int, ts []attnTensorView) ([]dispatch, error) {
	s := a.AttentionShape
	t, err := d.attnCM2Tile(s.D)
	if err != nil {
		return nil, err
	}
	// The spans of Q, K and V, merged where they overlap in one buffer (a
	// fused QKV projection is cast once).
	type region struct {
		buf    gpu.Buffer
		lo, hi int64 // elements of the buffer
		dt     gpu.DType
		at     int64 // the copy's first element in the scratch
	}
	var regs []*region
	span := func(i int) (int64, int64) {
		lo := ts[i].v.Off
		return lo, lo + attnSpan(s, ts[i].l, s.B, ts[i].t)
	}
	order := []int{0, 1, 2}
	sort.SliceStable(order, func(x, y int) bool {
		lx, _ := span(order[x])
		ly, _ := span(order[y])
		return lx < ly
	})
	owner := [3]*region{}
	for _, i := range order {
		lo, hi := span(i)
		v := ts[i].v
		var r *region
		for _, x := range regs {
			if x.buf == v.Buf && x.dt == v.DType && lo < x.hi && x.lo < hi {
				r = x
				break
			}
		}
		if r == nil {
			r = &region{buf: v.Buf, lo: lo, hi: hi, dt: v.DType}
			regs = append(regs, r)
		}
		r.lo, r.hi = min(r.lo, lo), max(r.hi, hi)
		owner[i] = r
	}
	var halves int64
	for _, r := range regs {
		r.at = halves
		halves += (r.hi - r.lo + 127) &^ 127
	}
	sb, err := d.scratchBuf(2 * halves)
	if err != nil {
		return nil, err
	}
	scratch := gpu.View{Buf: sb, Len: halves, DType: gpu.F16}
	var out []dispatch
	for _, r := range regs {
		x := gpu.View{Buf: r.buf, Off: r.lo, Len: r.hi - r.lo, DType: r.dt}
		ds, err := castKernel(d, gpu.Cast{X: x, Y: scratch.Slice(r.at, r.hi-r.lo), N: int(r.hi - r.lo)})
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	ts = append([]attnTensorView(nil), ts...)
	for i := range 3 {
		r := owner[i]
		lo, hi := span(i)
		ts[i].v = scratch.Slice(r.at+lo-r.lo, hi-lo)
	}
	tiles := int(ceilDiv(int64(s.Tq), int64(t.br)))
	spec := []uint32{t.wg, t.br, t.bc, t.d}
	out = append(out, d.attnDispatches(a, nb, ts, tiles, "attention_cm2", func(_, _, _, _ gpu.View) []uint32 { return spec })...)
	return out, nil
}
