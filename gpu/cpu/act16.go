package cpu

import (
	"unsafe"

	"blip/gpu"
)

// 16-bit activations (gpu.Gemm's A and C, gpu.LayerNorm's and gpu.Unary's
// Y, gpu.Attention's Q, K, V and O, gpu.AttentionBackward's Q, K and V in
// F16 or BF16): the reference runs the
// fp32 kernel on widened copies and rounds what it wrote back, which is the
// contract: widening is exact and each stored value is the fp32 result
// rounded to nearest even.

// widened returns an fp32 copy of the float view v on a scratch buffer of
// its own (offset 0, v.Len elements): v itself when it is F32.
func widened(v gpu.View) gpu.View {
	if v.Buf == nil || v.DType == gpu.F32 {
		return v
	}
	words := make([]uint32, v.Len)
	p := unsafe.Pointer(unsafe.SliceData(words))
	b := &buffer{n: 4 * v.Len, w: words, f: unsafe.Slice((*float32)(p), len(words)),
		i: unsafe.Slice((*int32)(p), len(words)), by: unsafe.Slice((*byte)(p), 4*len(words))}
	w := gpu.View{Buf: b, Len: v.Len, DType: gpu.F32}
	out := b.f
	load(v, int(v.Len), &out)
	return w
}

// narrowInto rounds the fp32 scratch w (from widened(v)) back into v.
func narrowInto(v, w gpu.View) {
	if v.DType != gpu.F32 {
		cast(gpu.Cast{X: w, Y: v, N: int(v.Len)})
	}
}

// gemmAct16 is gemm for calls with a 16-bit A or C.
func gemmAct16(g gpu.Gemm) {
	c := g.C
	g.A, g.C = widened(g.A), widened(g.C)
	gemm(g)
	narrowInto(c, g.C)
}

// layerNormAct16 is layerNorm for a 16-bit Y.
func layerNormAct16(l gpu.LayerNorm) {
	y := l.Y
	l.Y = widened(y)
	layerNorm(l)
	narrowInto(y, l.Y)
}

// attentionAct16 is the attention twin for 16-bit Q, K, V or O. Each of
// Q, K and V is widened on its own (they may be blocks of one tensor).
func attentionAct16(a gpu.Attention) {
	o := a.O
	a.Q, a.K, a.V, a.O = widened(a.Q), widened(a.K), widened(a.V), widened(o)
	attention(a)
	narrowInto(o, a.O)
}

// unaryAct16 is unary for a 16-bit Y.
func unaryAct16(u gpu.Unary) {
	y := u.Y
	u.Y = widened(y)
	unary(u)
	narrowInto(y, u.Y)
}

// attentionBackwardAct16 is the attention backward twin for 16-bit Q, K
// and V.
func attentionBackwardAct16(a gpu.AttentionBackward) {
	a.Q, a.K, a.V = widened(a.Q), widened(a.K), widened(a.V)
	attentionBackward(a)
}
