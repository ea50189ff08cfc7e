package graph

import (
	"blip/gpu"
)

// Activations: exact (erf) GELU and tanh, forward with Unary, backward with
// the fused ActBackward.

var (
	opGELU = defOp("gelu", actGrad)
	opTanh = defOp("tanh", actGrad)
)

type actAttr struct{ act gpu.Act }

// GELU returns the exact GELU x/2 * (1 + erf(x/sqrt 2)), elementwise.
func (g *Graph) GELU(x *Tensor) *Tensor { return g.activation(opGELU, gpu.ActGELU, gpu.UnaryGELU, x) }

// Tanh returns tanh(x), elementwise.
func (g *Graph) Tanh(x *Tensor) *Tensor { return g.activation(opTanh, gpu.ActTanh, gpu.UnaryTanh, x) }

func (g *Graph) activation(op *opDef, act gpu.Act, u gpu.UnaryOp, x *Tensor) *Tensor {
	name := g.opName(op.name)
	if !g.check(name, x) || !g.needF32(name, []string{"x"}, x) {
		return g.invalid()
	}
	y := g.act(x.shape)
	n := g.add(op, name, []*Tensor{x}, []*Tensor{y})
	n.attr = &actAttr{act}
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.Unary{Op: u, X: e.v(x), Y: e.v(y), N: x.Numel()}}
	}
	return y
}

func actGrad(b *backCtx, n *node) {
	act := n.attr.(*actAttr).act
	x, y := n.ins[0], n.outs[0]
	dy := b.grad(y)
	// GELU's derivative needs its input; tanh's follows from its output
	// (1 - y^2), so x may die after the forward.
	in := x
	if act == gpu.ActTanh {
		in = y
	}
	bn := b.begin(dy, in)
	w, addTo := b.over(bn, x, dy)
	bn.emit = func(e *emitCtx) []gpu.Call {
		c := gpu.ActBackward{Act: act, X: e.v(in), DY: e.v(dy), DX: e.v(w), Rows: x.shape.Rows(), Cols: x.shape.Last(),
			FromOutput: act == gpu.ActTanh}
		return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
	}
}
