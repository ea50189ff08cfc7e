package graph

import (
	"math"

	"blip/gpu"
)

// Multi-head scaled dot-product attention over (B, T, H*D) tensors (heads
// side by side within a token, as the q/k/v linears produce them). The fused
// kernels (gpu.Attention, gpu.AttentionBackward) never materialise the
// (Tq, Tk) scores; the unfused path (batched Gemms over the heads of each
// batch, Softmax, SoftmaxBackward) keeps the probabilities for the
// backward pass and serves head dimensions above gpu.MaxAttentionHeadDim.

var opAttention = defOp("attention", attentionGrad)

// AttentionOpts configure Attention.
type AttentionOpts struct {
	Heads int
	// Mask is an optional additive key-padding mask (B, Tk), f32: 0 keeps
	// a key, a large negative value or -Inf removes it. No gradient flows
	// to it.
	Mask *Tensor
	// Causal removes keys j > i + (Tk - Tq) from query i.
	Causal bool
	// Scale of the scores; 0 means 1/sqrt(D).
	Scale float32
	// Unfused forces the matmul + softmax path.
	Unfused bool
}

type attnAttr struct {
	shape   gpu.AttentionShape // Scale resolved
	mask    *Tensor
	fused   bool
	lse     *Tensor // fused: saved log-sum-exp (B, H, Tq)
	probs   *Tensor // unfused: saved probabilities (B, H, Tq, Tk)
	pTemp   *Tensor // unfused, no-grad: the probabilities as scratch
	causalM *Tensor // unfused: additive (Tq, Tk) causal mask
	// inPlace: q, k and v are the column blocks of one (B, T, 3*H*D)
	// tensor, the node's first input, which the fused kernels read (and
	// whose gradient they write) in place at these element offsets, with
	// the tensor's token stride (shape's QTok, KTok, VTok).
	inPlace bool
	offsets [3]int64
}

// packedQKV reports whether q, k and v are the three column blocks of one
// (B, T, 3*hd) tensor x, sliced along its last axis (a fused qkv
// projection, as the ViT's): their source and offsets. The slices are
// then not needed: attention reads x in place.
func packedQKV(q, k, v *Tensor) (*Tensor, [3]int64, bool) {
	var x *Tensor
	var offs [3]int64
	seen := map[int64]bool{}
	for i, t := range []*Tensor{q, k, v} {
		n := t.src
		if n == nil || n.op != opSlice || len(n.ins) != 1 {
			return nil, offs, false
		}
		if x == nil {
			x = n.ins[0]
		}
		hd := t.shape.Last()
		geom := n.attr.(*sliceAttr).geom
		if n.ins[0] != x || x.shape.Rank() != 3 || x.shape[2] != 3*hd || t.shape.Rank() != 3 ||
			geom.outer != x.shape[0]*x.shape[1] || geom.width != hd || geom.ld != 3*hd || geom.off%int64(hd) != 0 || seen[geom.off] {
			return nil, offs, false
		}
		seen[geom.off] = true
		offs[i] = geom.off
	}
	return x, offs, true
}

// Attention returns softmax(Scale * q k^T + mask) v per head: q (B, Tq, H*D),
// k and v (B, Tk, H*D), result (B, Tq, H*D). Plans of a graph whose
// weights are stored as f16 (Params.SetStorage: fp16 inference, and fp16
// mixed-precision training) run the fused kernel's products in f16 too
// (gpu.Attention.F16, and its backward gpu.AttentionBackward.F16), as
// autocast runs attention's matmuls; the unfused path does not, nor does
// attention over at most f16MinQueries queries (decoding).
func (g *Graph) Attention(q, k, v *Tensor, o AttentionOpts) *Tensor {
	name := g.opName("attention")
	ops := []*Tensor{q, k, v}
	if o.Mask != nil {
		ops = append(ops, o.Mask)
	}
	if !g.check(name, ops...) || !g.needF32(name, []string{"q", "k", "v", "mask"}, ops...) {
		return g.invalid()
	}
	if q.shape.Rank() != 3 || k.shape.Rank() != 3 || !k.shape.Equal(v.shape) {
		return g.failf(name, "q %v, k %v and v %v: want (B, Tq, H*D), (B, Tk, H*D), (B, Tk, H*D)", q, k, v)
	}
	b, tq, hd := q.shape[0], q.shape[1], q.shape[2]
	tk := k.shape[1]
	if k.shape[0] != b || k.shape[2] != hd {
		return g.failf(name, "q %v and k %v: batch and width must agree", q, k)
	}
	if o.Heads <= 0 || hd%o.Heads != 0 {
		return g.failf(name, "q %v: width %d is not a multiple of %d heads", q, hd, o.Heads)
	}
	if o.Mask != nil && !o.Mask.shape.Equal(Shape{b, tk}) {
		return g.failf(name, "mask %v and k %v: the key mask must be (B, Tk) = %v", o.Mask, k, Shape{b, tk})
	}
	d := hd / o.Heads
	scale := o.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(d)))
	}
	y := g.act(q.shape)
	n := g.add(opAttention, name, ops, []*Tensor{y})
	a := &attnAttr{
		shape: gpu.AttentionShape{B: b, H: o.Heads, Tq: tq, Tk: tk, D: d, Causal: o.Causal, Scale: scale},
		mask:  o.Mask,
		fused: !o.Unfused && d <= gpu.MaxAttentionHeadDim,
	}
	if o.Mask != nil {
		n.nondiff = map[*Tensor]bool{o.Mask: true}
	}
	n.attr = a
	if a.fused {
		if x, offs, ok := packedQKV(q, k, v); ok {
			// Read the qkv tensor in place: no copies of the slices.
			a.inPlace, a.offsets = true, offs
			a.shape.QTok, a.shape.KTok, a.shape.VTok = 3*hd, 3*hd, 3*hd
			n.ins[0], n.ins[1], n.ins[2] = x, x, x
		}
		a.lse = g.act(Shape{b, o.Heads, tq})
		n.saved = []*Tensor{a.lse}
		n.emit = func(e *emitCtx) []gpu.Call {
			// Few queries (decoding) stay fp32: that attention is bound by
			// reading K and V, which the split-K kernel spreads over the
			// device; tensor cores would not help it.
			qv, kv, vv := a.qkvViews(e, q, k, v, n.ins[0])
			c := gpu.Attention{Q: qv, K: kv, V: vv, O: e.v(y), AttentionShape: a.shape,
				F16: a.f16(g)}
			if a.mask != nil {
				c.Mask = e.v(a.mask)
			}
			if e.has(a.lse) {
				c.LSE = e.v(a.lse)
			}
			return []gpu.Call{c}
		}
		return y
	}
	ps := Shape{b, o.Heads, tq, tk}
	a.probs, a.pTemp = g.act(ps), g.act(ps)
	n.saved, n.inferTemps = []*Tensor{a.probs}, []*Tensor{a.pTemp}
	if o.Causal {
		m := make([]float32, tq*tk)
		for i := range tq {
			for j := range tk {
				if !a.shape.Visible(i, j) {
					m[i*tk+j] = float32(math.Inf(-1))
				}
			}
		}
		a.causalM = g.Const(name+".causal", m, tq, tk)
		n.ins = append(n.ins, a.causalM)
	}
	n.emit = func(e *emitCtx) []gpu.Call {
		p := a.probs
		if !e.has(p) {
			p = a.pTemp
		}
		return a.unfusedForward(e, e.v(q), e.v(k), e.v(v), e.v(y), e.v(p))
	}
	return y
}

// qkvViews are the views of q, k and v the fused kernels read: each its own,
// or, packed, the column blocks of x's.
func (a *attnAttr) qkvViews(e *emitCtx, q, k, v, x *Tensor) (gpu.View, gpu.View, gpu.View) {
	if !a.inPlace {
		return e.v(q), e.v(k), e.v(v)
	}
	return a.blocks(e.v(x))
}

// blocks are the three column blocks of a packed (B, T, 3*H*D) view.
func (a *attnAttr) blocks(xv gpu.View) (gpu.View, gpu.View, gpu.View) {
	at := func(off int64) gpu.View { return xv.Slice(off, xv.Len-off) }
	return at(a.offsets[0]), at(a.offsets[1]), at(a.offsets[2])
}

// backward is the fused backward of output y with gradient dy, but for
// its Q, K, V and their gradients, which the caller sets.
func (a *attnAttr) backward(e *emitCtx, g *Graph, y, dy *Tensor) gpu.AttentionBackward {
	c := gpu.AttentionBackward{O: e.v(y), DO: e.v(dy), LSE: e.v(a.lse), AttentionShape: a.shape, F16: a.f16(g)}
	if a.mask != nil {
		c.Mask = e.v(a.mask)
	}
	return c
}

// headGemm is a Gemm batched over the H heads of one batch element, for
// operands that are either (T, H*D) token-major (heads side by side: ld H*D,
// head stride D) or (H, rows, cols) packed.
type headOperand struct {
	v      gpu.View
	ld     int
	stride int64
	trans  bool
}

func (a *attnAttr) tok(v gpu.View, t, b int, trans bool) headOperand {
	s := a.shape
	hd := s.H * s.D
	return headOperand{v: v.Slice(int64(b*t*hd), int64(t*hd)), ld: hd, stride: int64(s.D), trans: trans}
}

func (a *attnAttr) packed(v gpu.View, b int, trans bool) headOperand {
	s := a.shape
	n := int64(s.Tq * s.Tk)
	return headOperand{v: v.Slice(int64(b)*int64(s.H)*n, int64(s.H)*n), stride: n, trans: trans}
}

func headGemm(h int, m, n, k int, A, B, C headOperand, alpha, beta float32) gpu.Gemm {
	return gpu.Gemm{A: A.v, B: B.v, C: C.v, Batch: h, M: m, N: n, K: k, TransA: A.trans, TransB: B.trans,
		LdA: A.ld, LdB: B.ld, LdC: C.ld, StrideA: A.stride, StrideB: B.stride, StrideC: C.stride, Alpha: alpha, Beta: beta}
}

func (a *attnAttr) unfusedForward(e *emitCtx, q, k, v, y, p gpu.View) []gpu.Call {
	s := a.shape
	var calls []gpu.Call
	for b := range s.B {
		// P[b, h] = Scale * Q[b, :, h] @ K[b, :, h]^T
		calls = append(calls, headGemm(s.H, s.Tq, s.Tk, s.D, a.tok(q, s.Tq, b, false), a.tok(k, s.Tk, b, true),
			a.packed(p, b, false), s.Scale, 0))
	}
	rows := s.B * s.H * s.Tq
	if a.causalM != nil {
		calls = append(calls, gpu.Binary{Op: gpu.BinaryAdd, A: p, B: e.v(a.causalM), C: p, N: rows * s.Tk, BN: s.Tq * s.Tk})
	}
	sm := gpu.Softmax{X: p, Y: p, Rows: rows, Cols: s.Tk, MaskGroup: s.H * s.Tq}
	if a.mask != nil {
		sm.Mask = e.v(a.mask)
	}
	calls = append(calls, sm)
	for b := range s.B {
		// O[b, :, h] = P[b, h] @ V[b, :, h]
		calls = append(calls, headGemm(s.H, s.Tq, s.D, s.Tk, a.packed(p, b, false), a.tok(v, s.Tk, b, false),
			a.tok(y, s.Tq, b, false), 1, 0))
	}
	return calls
}

func attentionGrad(b *backCtx, n *node) {
	a := n.attr.(*attnAttr)
	q, k, v, y := n.ins[0], n.ins[1], n.ins[2], n.outs[0]
	dy := b.grad(y)
	qkv := []*Tensor{q, k, v}
	if a.inPlace {
		// The kernel writes DQ, DK and DV with the layouts of Q, K and V:
		// together every element of the packed tensor's gradient.
		x := q
		bn := b.begin(dy, x, y, a.lse, a.mask)
		// Under f16 products the backward rounds Q, K and V to f16 as the
		// forward does: the qkv tensor may be kept in f16.
		bn.lowRead = func(t *Tensor) gpu.DType {
			if t == x {
				return attentionInputType(n, t)
			}
			return gpu.F32
		}
		var w, addTo *Tensor
		if b.needs(n, x) && x.kind != kParam && b.grads[x] == nil {
			w = b.fresh(x)
			bn.outs = append(bn.outs, w)
		} else {
			w = b.temp(bn, x.shape)
			if b.needs(n, x) {
				addTo, _ = b.acc(bn, x)
			}
		}
		bn.emit = func(e *emitCtx) []gpu.Call {
			c := a.backward(e, b.g, y, dy)
			c.Q, c.K, c.V = a.blocks(e.v(x))
			c.DQ, c.DK, c.DV = a.blocks(e.v(w))
			return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
		}
		return
	}
	if a.fused {
		bn := b.begin(dy, q, k, v, y, a.lse, a.mask)
		bn.lowRead = func(t *Tensor) gpu.DType {
			if t == q || t == k || t == v {
				return attentionInputType(n, t)
			}
			return gpu.F32
		}
		// The kernel overwrites DQ, DK and DV, which may overlap neither
		// the inputs nor each other: a fresh gradient takes the result
		// directly, anything else goes through scratch.
		var w, addTo [3]*Tensor
		for i, t := range qkv {
			dup := (i > 0 && t == qkv[0]) || (i > 1 && t == qkv[1])
			if b.needs(n, t) && !dup && t.kind != kParam && b.grads[t] == nil {
				w[i] = b.fresh(t)
				bn.outs = append(bn.outs, w[i])
				continue
			}
			w[i] = b.temp(bn, t.shape)
			if b.needs(n, t) {
				addTo[i], _ = b.acc(bn, t)
			}
		}
		bn.emit = func(e *emitCtx) []gpu.Call {
			c := a.backward(e, b.g, y, dy)
			c.Q, c.K, c.V = e.v(q), e.v(k), e.v(v)
			c.DQ, c.DK, c.DV = e.v(w[0]), e.v(w[1]), e.v(w[2])
			calls := []gpu.Call{c}
			for i := range 3 {
				calls = append(calls, finishOver(e, w[i], addTo[i])...)
			}
			return calls
		}
		return
	}

	s := a.shape
	bn := b.begin(dy, q, k, v, a.probs)
	dp := b.temp(bn, a.probs.shape)
	var dq, dk, dv *Tensor
	var qAcc, kAcc, vAcc bool
	// The order of acc calls is the order of emission below, so that a
	// tensor used twice (q = k) is written once and then added to.
	if b.needs(n, v) {
		dv, vAcc = b.acc(bn, v)
	}
	if b.needs(n, q) {
		dq, qAcc = b.acc(bn, q)
	}
	if b.needs(n, k) {
		dk, kAcc = b.acc(bn, k)
	}
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		p, dP, dO := e.v(a.probs), e.v(dp), e.v(dy)
		for bi := range s.B {
			// dP[b, h] = dO[b, :, h] @ V[b, :, h]^T
			calls = append(calls, headGemm(s.H, s.Tq, s.Tk, s.D, a.tok(dO, s.Tq, bi, false), a.tok(e.v(v), s.Tk, bi, true),
				a.packed(dP, bi, false), 1, 0))
		}
		if dv != nil {
			for bi := range s.B {
				// dV[b, :, h] (+)= P[b, h]^T @ dO[b, :, h]
				calls = append(calls, headGemm(s.H, s.Tk, s.D, s.Tq, a.packed(p, bi, true), a.tok(dO, s.Tq, bi, false),
					a.tok(e.v(dv), s.Tk, bi, false), 1, beta(vAcc)))
			}
		}
		// dS = P * (dP - rowsum(dP * P)), in place.
		calls = append(calls, gpu.SoftmaxBackward{Y: p, DY: dP, DX: dP, Rows: s.B * s.H * s.Tq, Cols: s.Tk})
		if dq != nil {
			for bi := range s.B {
				// dQ[b, :, h] (+)= Scale * dS[b, h] @ K[b, :, h]
				calls = append(calls, headGemm(s.H, s.Tq, s.D, s.Tk, a.packed(dP, bi, false), a.tok(e.v(k), s.Tk, bi, false),
					a.tok(e.v(dq), s.Tq, bi, false), s.Scale, beta(qAcc)))
			}
		}
		if dk != nil {
			for bi := range s.B {
				// dK[b, :, h] (+)= Scale * dS[b, h]^T @ Q[b, :, h]
				calls = append(calls, headGemm(s.H, s.Tk, s.D, s.Tq, a.packed(dP, bi, true), a.tok(e.v(q), s.Tq, bi, false),
					a.tok(e.v(dk), s.Tk, bi, false), s.Scale, beta(kAcc)))
			}
		}
		return calls
	}
}

// f16MinQueries: attention with at most this many queries per sequence
// keeps fp32 products under fp16 weights (the Vulkan split-K decode path's
// limit).
const f16MinQueries = 4

// f16 reports whether the fused kernels of a run their products in f16
// (the forward and the backward alike).
func (a *attnAttr) f16(g *Graph) bool {
	return a.shape.Tq > f16MinQueries && g.weightsF16()
}

// weightsF16 reports whether any parameter of g is read from an f16 copy
// (Params.SetStorage(gpu.F16)): fp16 inference or mixed-precision
// training, under which the attention products run in f16 as well. Plans are compiled after
// SetStorage (it requires a recompile), so emit time is the time to ask.
func (g *Graph) weightsF16() bool {
	for p := range g.params {
		if p.ps != nil && p.ps.Storage() == gpu.F16 {
			return true
		}
	}
	return false
}
