package graph

import (
	"blip/gpu"
)

// Dropout with a counter-based mask: the Dropout kernel draws keep(i) from
// Philox at (seed, i), so the backward pass is the same call on the output
// gradient with the same seed, and no mask is stored. Each Run draws a new
// seed per dropout op (Plan.SetSeed, dropoutSeed), patched into the recorded
// calls before they are submitted.

var opDropout = defOp("dropout", dropoutGrad)

type dropoutAttr struct {
	p    float32
	salt uint64 // which dropout op: its own random stream
}

// Dropout zeroes each element of x with probability p and scales the rest by
// 1/(1-p). p = 0 returns x itself. A plan compiled with DropoutOff (or with
// an equal seed) makes it the identity (respectively repeatable).
func (g *Graph) Dropout(x *Tensor, p float32) *Tensor {
	name := g.opName("dropout")
	if !g.check(name, x) || !g.needF32(name, []string{"x"}, x) {
		return g.invalid()
	}
	if !(p >= 0 && p < 1) {
		return g.failf(name, "p = %g, must be in [0, 1)", p)
	}
	if p == 0 {
		return x
	}
	g.dropout++
	a := &dropoutAttr{p: p, salt: uint64(g.dropout)}
	y := g.act(x.shape)
	n := g.add(opDropout, name, []*Tensor{x}, []*Tensor{y})
	n.attr = a
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{a.call(e, e.v(x), e.v(y), x.Numel())}
	}
	return y
}

// call is the Dropout call of x into y; Plan.Record replaces the salt in
// Seed by the run's seed for this op.
func (a *dropoutAttr) call(e *emitCtx, x, y gpu.View, n int) *gpu.Dropout {
	p := a.p
	if e.dropoutOff {
		p = 0
	}
	return &gpu.Dropout{X: x, Y: y, N: n, P: p, Seed: a.salt}
}

func dropoutGrad(b *backCtx, n *node) {
	a := n.attr.(*dropoutAttr)
	x := n.ins[0]
	dy := b.grad(n.outs[0])
	bn := b.begin(dy)
	w, addTo := b.over(bn, x, dy)
	bn.emit = func(e *emitCtx) []gpu.Call {
		return append([]gpu.Call{a.call(e, e.v(dy), e.v(w), x.Numel())}, finishOver(e, w, addTo)...)
	}
}
