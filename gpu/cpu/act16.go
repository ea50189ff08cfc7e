package cpu

import (
	"sync"
	"unsafe"

	"blip/gpu"
)

// 16-bit activations (gpu.Gemm's A and C, gpu.LayerNorm's and gpu.Unary's
// Y, gpu.Attention's Q, K, V and O, gpu.AttentionBackward's Q, K and V in
// F16 or BF16): the reference runs the fp32 kernel on widened copies and
// rounds what it wrote back, which is the contract: widening is exact and
// each stored value is the fp32 result rounded to nearest even.

// act16 runs k, a kernel over a call that ins and outs point into, with
// each 16-bit view among them replaced by an fp32 copy (outs too: Beta
// reads a Gemm's C), then rounds the copies of outs back into their views.
// Without 16-bit views it is k(). Q, K and V are widened each on its own:
// they may be blocks of one tensor.
func act16(k func(), ins []*gpu.View, outs ...*gpu.View) {
	type copied struct {
		at   *gpu.View // the call's field, now the copy
		orig gpu.View
		w    *[]uint32
		out  bool
	}
	var cs []copied
	widen := func(v *gpu.View, out bool) {
		if v.Buf == nil || v.DType.Size() != 2 {
			return
		}
		w := scratchWords(int(v.Len))
		c := copied{at: v, orig: *v, w: w, out: out}
		*v = wordsView(*w)
		f := v.Buf.(*buffer).f
		load(c.orig, int(c.orig.Len), &f)
		cs = append(cs, c)
	}
	for _, v := range ins {
		widen(v, false)
	}
	for _, v := range outs {
		widen(v, true)
	}
	k()
	for _, c := range cs {
		if c.out {
			cast(gpu.Cast{X: *c.at, Y: c.orig, N: int(c.orig.Len)})
		}
		words.Put(c.w)
	}
}

// words recycles act16's fp32 copies: a 16-bit plan runs them every call.
var words sync.Pool

// scratchWords returns a slice of at least n words (contents undefined).
func scratchWords(n int) *[]uint32 {
	if w, ok := words.Get().(*[]uint32); ok && cap(*w) >= n {
		*w = (*w)[:n]
		return w
	}
	w := make([]uint32, n)
	return &w
}

// wordsView is an fp32 view of all of w, on a buffer no backend owns.
func wordsView(w []uint32) gpu.View {
	p := unsafe.Pointer(unsafe.SliceData(w))
	b := &buffer{n: 4 * int64(len(w)), w: w, f: unsafe.Slice((*float32)(p), len(w)),
		i: unsafe.Slice((*int32)(p), len(w)), by: unsafe.Slice((*byte)(p), 4*len(w))}
	return gpu.View{Buf: b, Len: int64(len(w)), DType: gpu.F32}
}
