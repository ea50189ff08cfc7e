package graph

import (
	"blip/gpu"
)

// L2 normalisation over the last dimension, as
// torch.nn.functional.normalize(x, dim=-1): the fused L2Normalize forward
// and L2NormalizeBackward (which needs the input only).

var opL2Normalize = defOp("l2normalize", l2NormalizeGrad)

type l2Attr struct{ eps float32 }

// L2Normalize returns x / max(||x||, eps) row by row over the last
// dimension; eps 0 means PyTorch's 1e-12.
func (g *Graph) L2Normalize(x *Tensor, eps float32) *Tensor {
	name := g.opName("l2normalize")
	if !g.check(name, x) || !g.needF32(name, []string{"x"}, x) {
		return g.invalid()
	}
	if eps == 0 {
		eps = 1e-12
	}
	if !(eps > 0) {
		return g.failf(name, "eps = %g, must be > 0", eps)
	}
	y := g.act(x.shape)
	n := g.add(opL2Normalize, name, []*Tensor{x}, []*Tensor{y})
	n.attr = &l2Attr{eps}
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.L2Normalize{X: e.v(x), Y: e.v(y), Rows: x.shape.Rows(), Cols: x.shape.Last(), Eps: eps}}
	}
	return y
}

func l2NormalizeGrad(b *backCtx, n *node) {
	eps := n.attr.(*l2Attr).eps
	x := n.ins[0]
	dy := b.grad(n.outs[0])
	bn := b.begin(dy, x)
	w, addTo := b.over(bn, x, dy)
	bn.emit = func(e *emitCtx) []gpu.Call {
		c := gpu.L2NormalizeBackward{X: e.v(x), DY: e.v(dy), DX: e.v(w), Rows: x.shape.Rows(), Cols: x.shape.Last(), Eps: eps}
		return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
	}
}
