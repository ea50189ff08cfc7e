package graph

import (
	"blip/gpu"
)

// Elementwise arithmetic: Add, Sub, Mul and Div (one operand may broadcast
// as a repeated trailing block: a bias row, a (T, C) position table over
// (B, T, C), a scalar) and Scale.

var (
	opAdd   = defOp("add", addGrad)
	opSub   = defOp("sub", subGrad)
	opMul   = defOp("mul", mulGrad)
	opDiv   = defOp("div", divGrad)
	opScale = defOp("scale", scaleGrad)
)

type binAttr struct {
	big, small *Tensor // small broadcasts over big (the same tensor shape when equal)
	swapped    bool    // big is the second operand (b - a, b / a)
	// lnY is the output of the LayerNorm that reads this add's result
	// right after it and computes the add itself in inference plans
	// (gpu.LayerNorm.R, see LayerNorm), or nil.
	lnY *Tensor
}

// broadcastPair orders a and b as (big, small) when one broadcasts over the
// other, or records an error naming both shapes.
func (g *Graph) broadcastPair(name string, a, b *Tensor) (big, small *Tensor, ok bool) {
	switch {
	case a.shape.Equal(b.shape), b.shape.isSuffixOf(a.shape):
		return a, b, true
	case a.shape.isSuffixOf(b.shape):
		return b, a, true
	}
	g.failf(name, "a %v and b %v do not broadcast (one must equal the other's innermost dimensions)", a, b)
	return nil, nil, false
}

func (g *Graph) binary(op *opDef, kind gpu.BinaryOp, a, b *Tensor) *Tensor {
	name := g.opName(op.name)
	if !g.check(name, a, b) || !g.needF32(name, []string{"a", "b"}, a, b) {
		return g.invalid()
	}
	big, small, ok := g.broadcastPair(name, a, b)
	if !ok {
		return g.invalid()
	}
	swapped := big != a
	if swapped && (kind == gpu.BinarySub || kind == gpu.BinaryDiv) {
		// The kernel broadcasts its second operand only.
		return g.failf(name, "a %v broadcasts over b %v: only the second operand of %s may broadcast", a, b, op.name)
	}
	y := g.act(big.shape)
	n := g.add(op, name, []*Tensor{a, b}, []*Tensor{y})
	ba := &binAttr{big: big, small: small, swapped: swapped}
	n.attr = ba
	n.emit = func(e *emitCtx) []gpu.Call {
		if ba.lnY != nil && !e.training && e.has(ba.lnY) {
			return nil // the LayerNorm after it adds
		}
		return []gpu.Call{gpu.Binary{Op: kind, A: e.v(big), B: e.v(small), C: e.v(y), N: big.Numel(), BN: small.Numel()}}
	}
	return y
}

// Add returns a + b; one of them may broadcast (see Mul).
func (g *Graph) Add(a, b *Tensor) *Tensor { return g.binary(opAdd, gpu.BinaryAdd, a, b) }

// Sub returns a - b; b may broadcast over a (see Mul).
func (g *Graph) Sub(a, b *Tensor) *Tensor { return g.binary(opSub, gpu.BinarySub, a, b) }

// Div returns a / b; b may broadcast over a (see Mul): logits / temperature.
func (g *Graph) Div(a, b *Tensor) *Tensor { return g.binary(opDiv, gpu.BinaryDiv, a, b) }

// Mul returns a * b elementwise. Shapes are equal, or one operand (leading
// ones aside) equals the other's innermost dimensions and repeats over the
// rest: (C) over (B, T, C), (1, T, C) over (B, T, C), () over anything.
func (g *Graph) Mul(a, b *Tensor) *Tensor { return g.binary(opMul, gpu.BinaryMul, a, b) }

// sumInto emits the gradient of small, the broadcast operand, from the full
// gradient d: a column sum over the repeats, or d itself when nothing
// repeats.
func (b *backCtx) sumInto(n *node, small *Tensor, d *Tensor, reps int) func(e *emitCtx) []gpu.Call {
	ds, acc := b.acc(n, small)
	var scratch *Tensor
	cols := small.Numel()
	if l := gpu.ColumnScratchLen(reps, cols); l > 0 && reps > 1 {
		scratch = b.temp(n, Shape{int(l)})
	}
	return func(e *emitCtx) []gpu.Call {
		if reps == 1 {
			if acc {
				return []gpu.Call{addInto(e.v(ds), e.v(d))}
			}
			return []gpu.Call{gpu.Unary{Op: gpu.UnaryCopy, X: e.v(d), Y: e.v(ds), N: cols}}
		}
		return []gpu.Call{colSum(e, e.v(d), e.v(ds), reps, cols, scratch, acc)}
	}
}

func addGrad(b *backCtx, n *node) {
	at := n.attr.(*binAttr)
	dy := b.grad(n.outs[0])
	// The small operand first: it reads dy, which the big one may then
	// take over without a copy.
	if b.needs(n, at.small) {
		bn := b.begin(dy)
		bn.emit = b.sumInto(bn, at.small, dy, at.big.Numel()/at.small.Numel())
	}
	if b.needs(n, at.big) {
		b.passThrough(at.big, dy)
	}
}

func subGrad(b *backCtx, n *node) {
	at := n.attr.(*binAttr)
	dy := b.grad(n.outs[0])
	if b.needs(n, at.small) {
		// d b = -(sum over repeats of dy): summed into scratch, then
		// subtracted from (or negated into) the gradient.
		bn := b.begin(dy)
		reps, cols := at.big.Numel()/at.small.Numel(), at.small.Numel()
		var s, scratch *Tensor
		if reps > 1 {
			s = b.temp(bn, at.small.shape)
			if l := gpu.ColumnScratchLen(reps, cols); l > 0 {
				scratch = b.temp(bn, Shape{int(l)})
			}
		}
		ds, acc := b.acc(bn, at.small)
		bn.emit = func(e *emitCtx) []gpu.Call {
			var sum gpu.View
			var calls []gpu.Call
			if reps == 1 {
				sum = e.v(dy)
			} else {
				sum = e.v(s)
				calls = append(calls, colSum(e, e.v(dy), sum, reps, cols, scratch, false))
			}
			if acc {
				return append(calls, gpu.Binary{Op: gpu.BinarySub, A: e.v(ds), B: sum, C: e.v(ds), N: cols})
			}
			return append(calls, gpu.Unary{Op: gpu.UnaryScale, X: sum, Y: e.v(ds), N: cols, Alpha: -1})
		}
	}
	if b.needs(n, at.big) {
		b.passThrough(at.big, dy)
	}
}

func divGrad(b *backCtx, n *node) {
	at := n.attr.(*binAttr)
	big, small, y := at.big, at.small, n.outs[0]
	dy := b.grad(y)
	reps := big.Numel() / small.Numel()
	bn := b.begin(dy, small)
	var emits []func(e *emitCtx) []gpu.Call
	if b.needs(n, small) {
		// d b = -sum over repeats of dy * y / b   (y = a / b)
		bn.ins = append(bn.ins, y)
		prod := b.temp(bn, big.shape)
		sum := b.sumInto(bn, small, prod, reps)
		emits = append(emits, func(e *emitCtx) []gpu.Call {
			p := e.v(prod)
			return append([]gpu.Call{
				gpu.Binary{Op: gpu.BinaryMul, A: e.v(dy), B: e.v(y), C: p, N: big.Numel()},
				gpu.Binary{Op: gpu.BinaryDiv, A: p, B: e.v(small), C: p, N: big.Numel(), BN: small.Numel()},
				gpu.Unary{Op: gpu.UnaryScale, X: p, Y: p, N: big.Numel(), Alpha: -1},
			}, sum(e)...)
		})
	}
	if b.needs(n, big) {
		// d a = dy / b, over dy.
		w, addTo := b.over(bn, big, dy)
		emits = append(emits, func(e *emitCtx) []gpu.Call {
			c := gpu.Binary{Op: gpu.BinaryDiv, A: e.v(dy), B: e.v(small), C: e.v(w), N: big.Numel(), BN: small.Numel()}
			return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
		})
	}
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		for _, f := range emits {
			calls = append(calls, f(e)...)
		}
		return calls
	}
}

func mulGrad(b *backCtx, n *node) {
	at := n.attr.(*binAttr)
	big, small := at.big, at.small
	dy := b.grad(n.outs[0])
	reps := big.Numel() / small.Numel()
	bn := b.begin(dy, big, small)
	var emits []func(e *emitCtx) []gpu.Call
	if b.needs(n, small) {
		// d small = sum over repeats of dy * big.
		prod := b.temp(bn, big.shape)
		sum := b.sumInto(bn, small, prod, reps)
		emits = append(emits, func(e *emitCtx) []gpu.Call {
			return append([]gpu.Call{gpu.Binary{Op: gpu.BinaryMul, A: e.v(dy), B: e.v(big), C: e.v(prod), N: big.Numel()}}, sum(e)...)
		})
	}
	if b.needs(n, big) {
		// d big = dy * small (broadcast), over dy.
		w, addTo := b.over(bn, big, dy)
		emits = append(emits, func(e *emitCtx) []gpu.Call {
			c := gpu.Binary{Op: gpu.BinaryMul, A: e.v(dy), B: e.v(small), C: e.v(w), N: big.Numel(), BN: small.Numel()}
			return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
		})
	}
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		for _, f := range emits {
			calls = append(calls, f(e)...)
		}
		return calls
	}
}

type scaleAttr struct{ alpha float32 }

// Scale returns alpha * x.
func (g *Graph) Scale(x *Tensor, alpha float32) *Tensor {
	name := g.opName("scale")
	if !g.check(name, x) || !g.needF32(name, []string{"x"}, x) {
		return g.invalid()
	}
	y := g.act(x.shape)
	n := g.add(opScale, name, []*Tensor{x}, []*Tensor{y})
	n.attr = &scaleAttr{alpha}
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.Unary{Op: gpu.UnaryScale, X: e.v(x), Y: e.v(y), N: x.Numel(), Alpha: alpha}}
	}
	return y
}

func scaleGrad(b *backCtx, n *node) {
	alpha := n.attr.(*scaleAttr).alpha
	x := n.ins[0]
	dy := b.grad(n.outs[0])
	bn := b.begin(dy)
	w, addTo := b.over(bn, x, dy)
	bn.emit = func(e *emitCtx) []gpu.Call {
		c := gpu.Unary{Op: gpu.UnaryScale, X: e.v(dy), Y: e.v(w), N: x.Numel(), Alpha: alpha}
		return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
	}
}
