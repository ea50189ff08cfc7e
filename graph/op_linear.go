package graph

import (
	"blip/gpu"
)

// Linear: y = act(x @ W^T + b), as torch.nn.Linear with W stored (out, in).

var opLinear = defOp("linear", linearGrad)

type linearAttr struct {
	act  gpu.Act
	z    *Tensor // GELU's pre-activation, saved for the backward pass
	bias bool
}

// Linear returns x @ W^T + b for x (..., in), W (out, in) and b (out) or nil:
// (..., out).
func (g *Graph) Linear(x, w, b *Tensor) *Tensor { return g.LinearAct(x, w, b, gpu.ActNone) }

// LinearAct is Linear followed by an activation (gpu.ActGELU, gpu.ActTanh),
// fused: in inference the activation runs in the Gemm's epilogue, in
// training its backward also yields the bias gradient (ActBackward.DBias).
func (g *Graph) LinearAct(x, w, b *Tensor, act gpu.Act) *Tensor {
	name := g.opName("linear")
	ops := []*Tensor{x, w}
	if b != nil {
		ops = append(ops, b)
	}
	if !g.check(name, ops...) || !g.needF32(name, []string{"x", "weight", "bias"}, ops...) {
		return g.invalid()
	}
	if act > gpu.ActTanh {
		return g.failf(name, "unknown activation %d", act)
	}
	if w.shape.Rank() != 2 {
		return g.failf(name, "weight %v must be 2-D (out, in)", w)
	}
	out, in := w.shape[0], w.shape[1]
	if x.shape.Rank() < 1 || x.shape.Last() != in {
		return g.failf(name, "x %v and weight %v: x's last dimension must be the weight's in-features %d", x, w, in)
	}
	if b != nil && !b.shape.Equal(Shape{out}) {
		return g.failf(name, "bias %v and weight %v: the bias must be (%d,)", b, w, out)
	}
	yshape := append(x.shape[:len(x.shape)-1].Clone(), out)
	y := g.act(yshape)
	n := g.add(opLinear, name, ops, []*Tensor{y})
	a := &linearAttr{act: act, bias: b != nil}
	if act == gpu.ActGELU {
		a.z = g.act(yshape)
		n.saved = []*Tensor{a.z}
	}
	n.attr = a
	rows := x.shape.Rows()
	n.emit = func(e *emitCtx) []gpu.Call {
		c := gpu.Gemm{A: e.v(x), B: e.weight(w), C: e.v(y), M: rows, N: out, K: in, TransB: true, Act: act,
			F16: e.halfProducts(w)}
		if b != nil {
			c.Bias = e.v(b)
		}
		if a.z == nil || !e.has(a.z) {
			return []gpu.Call{c}
		}
		// Training with GELU: keep the pre-activation for ActBackward.
		c.C, c.Act = e.v(a.z), gpu.ActNone
		return []gpu.Call{c, gpu.Unary{Op: gpu.UnaryGELU, X: e.v(a.z), Y: e.v(y), N: y.Numel()}}
	}
	return y
}

func linearGrad(b *backCtx, n *node) {
	a := n.attr.(*linearAttr)
	x, w, y := n.ins[0], n.ins[1], n.outs[0]
	var bias *Tensor
	if a.bias {
		bias = n.ins[2]
	}
	dy := b.grad(y)
	out, in := w.shape[0], w.shape[1]
	rows := x.shape.Rows()
	// Read only what the gradients need, so that activations die early.
	bn := b.begin(dy)
	if b.needs(n, w) {
		bn.ins = append(bn.ins, x)
	}
	if b.needs(n, x) {
		bn.ins = append(bn.ins, w)
	}
	switch a.act {
	case gpu.ActGELU:
		bn.ins = append(bn.ins, a.z)
	case gpu.ActTanh:
		bn.ins = append(bn.ins, y)
	}

	// dz: the gradient before the activation. ActBackward may write it
	// over dy.
	dz := dy
	if a.act != gpu.ActNone {
		if b.overwritable(dy) {
			dz = dy
		} else {
			dz = b.temp(bn, y.shape)
		}
	}
	var db *Tensor
	var dbAcc bool
	var scratch *Tensor
	if b.needs(n, bias) {
		db, dbAcc = b.acc(bn, bias)
		if l := gpu.ColumnScratchLen(rows, out); l > 0 {
			scratch = b.temp(bn, Shape{int(l)})
		}
	}
	var dx, dw *Tensor
	var dxAcc, dwAcc bool
	if b.needs(n, x) {
		dx, dxAcc = b.acc(bn, x)
	}
	if b.needs(n, w) {
		dw, dwAcc = b.acc(bn, w)
	}
	zeros := b.g.zeros(zeroChunk)
	bn.ins = append(bn.ins, zeros)
	// dW under f16 weights reads x rounded to f16: x may be kept in f16.
	bn.lowRead = func(t *Tensor) gpu.DType {
		if t == x && dw != nil && lowWeightType(w) == gpu.F16 {
			return gpu.F16
		}
		return gpu.F32
	}
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		if a.act != gpu.ActNone {
			ab := gpu.ActBackward{Act: a.act, DY: e.v(dy), DX: e.v(dz), Rows: rows, Cols: out}
			if a.act == gpu.ActGELU {
				ab.X = e.v(a.z)
			} else {
				ab.X, ab.FromOutput = e.v(y), true
			}
			if db != nil {
				// ActBackward adds to DBias: a fresh one starts at 0.
				if !dbAcc {
					calls = append(calls, zeroFill(e.v(db), e.v(zeros))...)
				}
				ab.DBias = e.v(db)
				if scratch != nil {
					ab.Scratch = e.v(scratch)
				}
			}
			calls = append(calls, ab)
		} else if db != nil {
			calls = append(calls, colSum(e, e.v(dz), e.v(db), rows, out, scratch, dbAcc))
		}
		// Under fp16 weights all three products are half precision, as
		// autocast runs them: dX reads the f16 copy of W, dW = dz^T x
		// rounds both fp32 operands to f16 (the gradient is written and
		// accumulated in fp32, into the fp32 master's gradient).
		f16 := e.halfProducts(w)
		if dx != nil {
			calls = append(calls, gpu.Gemm{A: e.v(dz), B: e.weight(w), C: e.v(dx), M: rows, N: in, K: out, Beta: beta(dxAcc), F16: f16})
		}
		if dw != nil {
			calls = append(calls, gpu.Gemm{A: e.v(dz), B: e.v(x), C: e.v(dw), M: out, N: in, K: rows, TransA: true, Beta: beta(dwAcc), F16: f16})
		}
		return calls
	}
}

// beta is a Gemm's Beta for an output that is added to (1) or overwritten.
func beta(acc bool) float32 {
	if acc {
		return 1
	}
	return 0
}
