package graph

import (
	"blip/gpu"
)

// Softmax over the last dimension, with an optional scale and additive mask;
// backward with the fused SoftmaxBackward (which needs only the output).

var opSoftmax = defOp("softmax", softmaxGrad)

type softmaxAttr struct {
	scale float32
	group int
}

// Softmax returns softmax(x) over the last dimension.
func (g *Graph) Softmax(x *Tensor) *Tensor { return g.SoftmaxMasked(x, nil, 1) }

// SoftmaxMasked returns softmax(scale*x + mask) over the last dimension of x
// (..., C). mask (nil for none) is additive, f32, (..., C) with a number of
// rows dividing x's: each mask row serves that many consecutive rows of x
// (a (B, Tk) key mask over (B, H, Tq, Tk) scores serves H*Tq rows). No
// gradient flows to mask.
func (g *Graph) SoftmaxMasked(x, mask *Tensor, scale float32) *Tensor {
	name := g.opName("softmax")
	ops := []*Tensor{x}
	if mask != nil {
		ops = append(ops, mask)
	}
	if !g.check(name, ops...) || !g.needF32(name, []string{"x", "mask"}, ops...) {
		return g.invalid()
	}
	if !(scale > 0 || scale < 0) {
		return g.failf(name, "scale = %g", scale)
	}
	rows, cols := x.shape.Rows(), x.shape.Last()
	group := 1
	if mask != nil {
		mr := mask.shape.Rows()
		if mask.shape.Last() != cols || rows%mr != 0 {
			return g.failf(name, "x %v and mask %v: the mask must have x's last dimension and a number of rows dividing x's %d", x, mask, rows)
		}
		group = rows / mr
	}
	y := g.act(x.shape)
	n := g.add(opSoftmax, name, ops, []*Tensor{y})
	if mask != nil {
		n.nondiff = map[*Tensor]bool{mask: true}
	}
	n.attr = &softmaxAttr{scale: scale, group: group}
	n.emit = func(e *emitCtx) []gpu.Call {
		s := gpu.Softmax{X: e.v(x), Y: e.v(y), Rows: rows, Cols: cols, MaskGroup: group, Scale: scale}
		if mask != nil {
			s.Mask = e.v(mask)
		}
		return []gpu.Call{s}
	}
	return y
}

func softmaxGrad(b *backCtx, n *node) {
	a := n.attr.(*softmaxAttr)
	x, y := n.ins[0], n.outs[0]
	dy := b.grad(y)
	bn := b.begin(dy, y)
	w, addTo := b.over(bn, x, dy)
	bn.emit = func(e *emitCtx) []gpu.Call {
		c := gpu.SoftmaxBackward{Y: e.v(y), DY: e.v(dy), DX: e.v(w), Rows: x.shape.Rows(), Cols: x.shape.Last(), Scale: a.scale}
		return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
	}
}
