package graph

import (
	"blip/gpu"
)

// LayerNorm over the last dimension, as torch.nn.LayerNorm: forward with
// LayerNorm (which saves each row's mean and 1/std), backward with the
// fused LayerNormBackward.
//
// A LayerNorm of the result of an Add of two tensors of one shape, built
// right after the Add (a transformer block's residual add and the norm
// after it), computes the add itself in inference plans: one LayerNorm
// call with the residual (gpu.LayerNorm.R), which also writes the sum where
// it has other readers, instead of a Binary and a LayerNorm. The Add emits
// nothing then, unless the plan leaves the LayerNorm out. Training plans
// keep both calls. Nothing can run between the two (plans run nodes in
// graph order); the operands' memory lives through the LayerNorm (its
// inferReads: else Y could take part of it, rows shifted, and overwrite
// rows still to be read), and the sum's is live across the Add, so no two
// of the call's views overlap.

var opLayerNorm = defOp("layernorm", layerNormGrad)

type layerNormAttr struct {
	eps        float32
	mean, rstd *Tensor // saved
}

// LayerNorm normalises x (..., C) over its last dimension and returns
// norm*gamma + beta, gamma and beta being (C).
func (g *Graph) LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	name := g.opName("layernorm")
	if !g.check(name, x, gamma, beta) || !g.needF32(name, []string{"x", "gamma", "beta"}, x, gamma, beta) {
		return g.invalid()
	}
	if !(eps > 0) {
		return g.failf(name, "eps = %g, must be > 0", eps)
	}
	c := x.shape.Last()
	if x.shape.Rank() < 1 || !gamma.shape.Equal(Shape{c}) || !beta.shape.Equal(Shape{c}) {
		return g.failf(name, "x %v, gamma %v and beta %v: gamma and beta must be (%d,), x's last dimension", x, gamma, beta, c)
	}
	rows := x.shape.Rows()
	add := g.residualAdd(x)
	y := g.act(x.shape)
	n := g.add(opLayerNorm, name, []*Tensor{x, gamma, beta}, []*Tensor{y})
	a := &layerNormAttr{eps: eps, mean: g.act(Shape{rows}), rstd: g.act(Shape{rows})}
	n.saved = []*Tensor{a.mean, a.rstd}
	n.attr = a
	if add != nil {
		add.lnY = y
		n.inferReads = []*Tensor{add.big, add.small}
	}
	n.emit = func(e *emitCtx) []gpu.Call {
		l := gpu.LayerNorm{X: e.v(x), Y: e.v(y), Gamma: e.v(gamma), Beta: e.v(beta), Rows: rows, Cols: c, Eps: eps}
		if add != nil && !e.training {
			l.X, l.R = e.v(add.big), e.v(add.small)
			if e.readBeyond(x) {
				l.S = e.v(x) // the sum for its other readers
			}
		}
		if e.has(a.mean) {
			l.Mean, l.Rstd = e.v(a.mean), e.v(a.rstd)
		}
		return []gpu.Call{l}
	}
	return y
}

// residualAdd is the Add a LayerNorm of x computes itself (see above): the
// graph's last node, an Add of two tensors of x's shape whose result is x
// and that no other LayerNorm took; else nil.
func (g *Graph) residualAdd(x *Tensor) *binAttr {
	if len(g.nodes) == 0 {
		return nil
	}
	last := g.nodes[len(g.nodes)-1]
	if last.op != opAdd || len(last.outs) != 1 || last.outs[0] != x {
		return nil
	}
	ba, ok := last.attr.(*binAttr)
	if !ok || ba.lnY != nil || !ba.small.shape.Equal(ba.big.shape) {
		return nil
	}
	return ba
}

func layerNormGrad(b *backCtx, n *node) {
	a := n.attr.(*layerNormAttr)
	x, gamma, beta := n.ins[0], n.ins[1], n.ins[2]
	dy := b.grad(n.outs[0])
	rows, cols := x.shape.Rows(), x.shape.Last()
	bn := b.begin(dy, x, gamma, a.mean, a.rstd)

	// DX is not optional: without a gradient for x it goes to scratch.
	var w, addTo *Tensor
	if b.needs(n, x) {
		w, addTo = b.over(bn, x, dy)
	} else if b.overwritable(dy) {
		w = dy
	} else {
		w = b.temp(bn, x.shape)
	}
	var dg, dbeta *Tensor
	var gAcc, bAcc bool
	if b.needs(n, gamma) {
		dg, gAcc = b.acc(bn, gamma)
	}
	if b.needs(n, beta) {
		dbeta, bAcc = b.acc(bn, beta)
	}
	var scratch *Tensor
	if dg != nil || dbeta != nil {
		if l := 2 * gpu.ColumnScratchLen(rows, cols); l > 0 {
			scratch = b.temp(bn, Shape{int(l)})
		}
	}
	zeros := b.g.zeros(zeroChunk)
	bn.ins = append(bn.ins, zeros)
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		l := gpu.LayerNormBackward{X: e.v(x), DY: e.v(dy), DX: e.v(w), Gamma: e.v(gamma), Mean: e.v(a.mean), Rstd: e.v(a.rstd),
			Rows: rows, Cols: cols}
		// The kernel adds to DGamma and DBeta: fresh ones start at 0.
		if dg != nil {
			if !gAcc {
				calls = append(calls, zeroFill(e.v(dg), e.v(zeros))...)
			}
			l.DGamma = e.v(dg)
		}
		if dbeta != nil {
			if !bAcc {
				calls = append(calls, zeroFill(e.v(dbeta), e.v(zeros))...)
			}
			l.DBeta = e.v(dbeta)
		}
		if scratch != nil {
			l.Scratch = e.v(scratch)
		}
		calls = append(calls, l)
		return append(calls, finishOver(e, w, addTo)...)
	}
}
