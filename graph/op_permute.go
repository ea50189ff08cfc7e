package graph

import (
	"blip/gpu"
)

// Permute and Transpose of up to four dimensions with the Permute kernel;
// the gradient is the inverse permutation of the output gradient.

var opPermute = defOp("permute", permuteGrad)

type permuteAttr struct {
	shape4, perm4 [4]int // padded to 4-D with leading ones
}

// Permute returns x with its dimensions reordered: dimension i of the result
// is dimension perm[i] of x (torch.permute). Up to 4 dimensions.
func (g *Graph) Permute(x *Tensor, perm ...int) *Tensor {
	name := g.opName("permute")
	if !g.check(name, x) {
		return g.invalid()
	}
	r := x.shape.Rank()
	if r > 4 || len(perm) != r {
		return g.failf(name, "x %v with permutation %v: want a permutation of the %d dimensions (at most 4)", x, perm, r)
	}
	var a permuteAttr
	seen := make([]bool, r)
	pad := 4 - r
	for i := range 4 {
		a.shape4[i], a.perm4[i] = 1, i
	}
	ys := make(Shape, r)
	for i, p := range perm {
		if p < 0 || p >= r || seen[p] {
			return g.failf(name, "x %v: %v is not a permutation of 0..%d", x, perm, r-1)
		}
		seen[p] = true
		a.shape4[pad+i] = x.shape[i]
		a.perm4[pad+i] = pad + p
		ys[i] = x.shape[p]
	}
	y := g.newTensor(kAct, ys, x.dtype)
	n := g.add(opPermute, name, []*Tensor{x}, []*Tensor{y})
	n.attr = &a
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.Permute{X: e.v(x), Y: e.v(y), Shape: a.shape4, Perm: a.perm4}}
	}
	return y
}

// Transpose swaps two dimensions of x.
func (g *Graph) Transpose(x *Tensor, d0, d1 int) *Tensor {
	if !x.Valid() {
		return g.Permute(x)
	}
	r := x.shape.Rank()
	a0, ok0 := axis(d0, r)
	a1, ok1 := axis(d1, r)
	if !ok0 || !ok1 {
		return g.failf(g.opName("permute"), "x %v has no dimensions %d and %d to transpose", x, d0, d1)
	}
	perm := make([]int, r)
	for i := range perm {
		perm[i] = i
	}
	perm[a0], perm[a1] = a1, a0
	return g.Permute(x, perm...)
}

func permuteGrad(b *backCtx, n *node) {
	a := n.attr.(*permuteAttr)
	x, y := n.ins[0], n.outs[0]
	dy := b.grad(y)
	// dy has the output's shape; permuting it by the inverse gives x's.
	var inv, yshape [4]int
	for i := range 4 {
		inv[a.perm4[i]] = i
		yshape[i] = a.shape4[a.perm4[i]]
	}
	bn := b.begin(dy)
	w, addTo := b.over(bn, x, nil)
	bn.emit = func(e *emitCtx) []gpu.Call {
		c := gpu.Permute{X: e.v(dy), Y: e.v(w), Shape: yshape, Perm: inv}
		return append([]gpu.Call{c}, finishOver(e, w, addTo)...)
	}
}
