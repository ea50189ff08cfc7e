package vk

import (
	"cmp"
	"os"
	"slices"

	"blip/gpu"
)

// Adjacent products of one A, such as a decoder's query, key and value
// projections of the new tokens, run as one dispatch of gemm_rows_seg.comp
// where each would run on gemm_rows.comp: their columns side by side, each
// product's weights, bias and output where its call puts them. A Do (or a
// capture) of such calls gives two dispatches fewer per decoder layer and
// token, and the barriers between them. The calls are independent: no
// product writes what another of the group reads or writes, so running
// them together computes what running them in order does.

// BLIP_GEMM_GROUP=0 keeps one dispatch per product (for comparisons).
var gemmGroupOff = os.Getenv("BLIP_GEMM_GROUP") == "0"

// maxGroup is the most products gemm_rows_seg.comp runs together.
const maxGroup = 3

// groupRows returns how many of calls, from the first on, run as one
// dispatch of gemm_rows_seg.comp (2 or 3) and that dispatch, or 0. The
// calls have been checked.
func (d *Device) groupRows(calls []gpu.Call) (int, dispatch) {
	if gemmGroupOff || len(calls) < 2 {
		return 0, dispatch{}
	}
	if _, ok := calls[1].(gpu.Gemm); !ok {
		return 0, dispatch{} // no group: spare the shape work the gemm kernel does anyway
	}
	var gs []gpu.Gemm
	var ss []gemmShape
	for _, c := range calls[:min(len(calls), maxGroup)] {
		g, ok := c.(gpu.Gemm)
		if !ok {
			break
		}
		s := gemmShapeOf(g)
		if !d.joins(gs, ss, g, &s) {
			break
		}
		gs, ss = append(gs, g), append(ss, s)
	}
	if len(gs) < 2 {
		return 0, dispatch{}
	}
	ds, ok := d.rowsSegDispatch(gs, ss)
	if !ok {
		return 0, dispatch{}
	}
	return len(gs), ds
}

// joins reports whether g (shape s) can run with the products gs before it.
func (d *Device) joins(gs []gpu.Gemm, ss []gemmShape, g gpu.Gemm, s *gemmShape) bool {
	if g.Beta != 0 || d.need16("gemm", g.B) != nil || !d.useRows(s) {
		return false
	}
	if len(gs) == 0 {
		return true
	}
	f, fs := gs[0], &ss[0]
	same := g.A == f.A && s.m == fs.m && s.n == fs.n && s.k == fs.k && s.lda == fs.lda && s.ldb == fs.ldb &&
		s.batch == fs.batch && s.sa == fs.sa && s.sb == fs.sb && g.F16 == f.F16 && g.Alpha == f.Alpha && g.Act == f.Act &&
		g.B.Buf == f.B.Buf && g.B.DType == f.B.DType && (g.Bias.Buf == nil) == (f.Bias.Buf == nil) && g.Bias.Buf == f.Bias.Buf
	if !same {
		return false
	}
	// Independent: no product's output overlaps what the group reads or
	// another product writes.
	cv := g.C.Slice(0, s.spanC(s.batch, s.m, s.n))
	for _, v := range []gpu.View{g.A, g.B, g.Bias} {
		if cv.Overlaps(v) {
			return false
		}
	}
	for i, o := range gs {
		oc := o.C.Slice(0, ss[i].spanC(ss[i].batch, ss[i].m, ss[i].n))
		for _, v := range []gpu.View{o.B, o.Bias} {
			if cv.Overlaps(v) {
				return false
			}
		}
		if oc.Overlaps(g.A) || oc.Overlaps(g.B) || oc.Overlaps(g.Bias) {
			return false
		}
		// Outputs may interleave (a key and a value slot of each cache
		// row): compare the rows they write, not their spans.
		if cv.Overlaps(oc) && rowsOverlap(rowSpans(g.C, s), rowSpans(o.C, &ss[i])) {
			return false
		}
	}
	return true
}

// rowSpans lists the elements a product's C rows cover, in order: [start,
// end) of each row of each batch.
func rowSpans(c gpu.View, s *gemmShape) [][2]int64 {
	spans := make([][2]int64, 0, s.batch*s.m)
	for b := range s.batch {
		for r := range s.m {
			lo := c.Off + b*s.sc + r*s.ldc
			spans = append(spans, [2]int64{lo, lo + s.n})
		}
	}
	slices.SortFunc(spans, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	return spans
}

// rowsOverlap reports whether two sorted lists of disjoint ranges share an
// element.
func rowsOverlap(a, b [][2]int64) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		if a[i][0] < b[j][1] && b[j][0] < a[i][1] {
			return true
		}
		if a[i][1] <= b[j][1] {
			i++
		} else {
			j++
		}
	}
	return false
}

// spanOf is the smallest view of one buffer holding all of vs.
func spanOf(vs []gpu.View) gpu.View {
	lo, hi := vs[0].Off, vs[0].Off+vs[0].Len
	for _, v := range vs[1:] {
		lo, hi = min(lo, v.Off), max(hi, v.Off+v.Len)
	}
	return gpu.View{Buf: vs[0].Buf, Off: lo, Len: hi - lo, DType: vs[0].DType}
}

// rowsSegDispatch is the products gs (shapes ss) as one dispatch of
// gemm_rows_seg.comp, or false where the B or Bias views of the group do
// not fit one binding.
func (d *Device) rowsSegDispatch(gs []gpu.Gemm, ss []gemmShape) (dispatch, bool) {
	s := &ss[0]
	bs, biases := make([]gpu.View, len(gs)), []gpu.View(nil)
	for i := range gs {
		bs[i] = ss[i].B.Slice(0, ss[i].spanB(s.batch, s.n))
		if gs[i].Bias.Buf != nil {
			biases = append(biases, gs[i].Bias.Slice(0, s.n))
		}
	}
	bv := spanOf(bs)
	var bias gpu.View
	if biases != nil {
		bias = spanOf(biases)
	}
	if bv.Bytes() > d.maxBind || bias.Bytes() > d.maxBind {
		return dispatch{}, false
	}
	// Offsets of each product's weights and bias within the bindings.
	offB := func(i int) uint32 { return d.elemOff(bv) + uint32(bs[i].Off-bv.Off) }
	offBias := func(i int) uint32 {
		if biases == nil {
			return 0
		}
		return d.elemOff(bias) + uint32(biases[i].Off-bias.Off)
	}
	av := s.A.Slice(0, s.spanA(s.batch, s.m))
	cs := make([]gpu.View, maxGroup)
	var ldc, sc [maxGroup]int64
	for i := range gs {
		cs[i] = ss[i].C.Slice(0, ss[i].spanC(s.batch, s.m, s.n))
		ldc[i], sc[i] = ss[i].ldc, ss[i].sc
		if s.batch == 1 {
			sc[i] = 0
		}
	}
	sa, sb := s.sa, s.sb
	if s.batch == 1 {
		sa, sb = 0, 0
	}
	vec := s.k%4 == 0 && s.lda%4 == 0 && s.ldb%4 == 0 && sa%4 == 0 && sb%4 == 0 && d.elemOff(av)%4 == 0
	for i := range gs {
		vec = vec && offB(i)%4 == 0
	}
	alpha := gs[0].Alpha
	if alpha == 0 {
		alpha = 1
	}
	push := d.gemmPush(s, av, bv, cs[0], bias, s.m, s.n, sa, sb, sc[0], alpha, 0, gs[0].Act)
	push[7], push[9] = offB(0), offBias(0) // gemmPush's offB, offBias: the first product's
	cOff := func(i int) uint32 {
		if cs[i].Buf == nil {
			return 0
		}
		return d.elemOff(cs[i])
	}
	push = append(push, uint32(len(gs)), offB(1), offB(2%len(gs)), cOff(1), cOff(2), offBias(1), offBias(2%len(gs)),
		uint32(ldc[1]), uint32(ldc[2]), uint32(sc[1]), uint32(sc[2]))
	spec, groups := rowsLaunch(s, s.n*int64(len(gs)), vec)
	if int64(groups[1]) > int64(d.maxGroups[1]) {
		return dispatch{}, false
	}
	ds := gemmDispatchB("gemm_rows_seg", spec, av, bv, cs[0], bias, push, groups)
	ds.binds = append(ds.binds, wr(cs[1]), wr(cs[2]))
	return ds, true
}
