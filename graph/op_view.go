package graph

import (
	"blip/gpu"
)

// Shape ops: Reshape and contiguous slices are views (no copy, no kernel);
// other slices and Concat move strided blocks with Copy2D, whose Accumulate
// also adds a slice's gradient into its place.

var (
	opReshape = defOp("reshape", reshapeGrad)
	opSlice   = defOp("slice", sliceGrad)
	opConcat  = defOp("concat", concatGrad)
)

// Reshape returns x with a new shape of the same number of elements, sharing
// its memory. One dimension may be -1 (inferred).
func (g *Graph) Reshape(x *Tensor, shape ...int) *Tensor {
	name := g.opName("reshape")
	if !g.check(name, x) {
		return g.invalid()
	}
	s := Shape(shape).Clone()
	infer := -1
	known := 1
	for i, d := range s {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d <= 0:
			return g.failf(name, "x %v to %v: bad dimension %d", x, Shape(shape), d)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if x.Numel()%known != 0 {
			return g.failf(name, "x %v to %v: %d elements do not divide into %d", x, Shape(shape), x.Numel(), known)
		}
		s[infer] = x.Numel() / known
	}
	if s.Numel() != x.Numel() {
		return g.failf(name, "x %v to %v: %d elements, not %d", x, Shape(shape), x.Numel(), s.Numel())
	}
	y := g.view(x, s, 0)
	g.add(opReshape, name, []*Tensor{x}, []*Tensor{y})
	return y
}

func reshapeGrad(b *backCtx, n *node) {
	b.passThrough(n.ins[0], b.grad(n.outs[0]))
}

// block describes a slab along one axis: outer rows of width elements with
// stride ld (elements) between them.
type blockGeom struct {
	outer, width, ld int
	off              int64 // of the slab's first element
}

// axisGeom splits shape around axis: the product of the dimensions before
// it, the dimension, and the product of those after it.
func axisGeom(s Shape, ax int) (outer, dim, inner int) {
	return Shape(s[:ax]).Numel(), s[ax], Shape(s[ax+1:]).Numel()
}

type sliceAttr struct{ geom blockGeom }

// Slice returns x[..., start:end, ...] along axis (negative counts from the
// end). A slice of the outermost non-unit dimension (rows) is a view; any
// other (column blocks, x[:, 0] of (B, T, C)) is a copy.
func (g *Graph) Slice(x *Tensor, ax, start, end int) *Tensor {
	name := g.opName("slice")
	if !g.check(name, x) {
		return g.invalid()
	}
	a, ok := axis(ax, x.shape.Rank())
	if !ok {
		return g.failf(name, "x %v has no axis %d", x, ax)
	}
	if start < 0 || end > x.shape[a] || start >= end {
		return g.failf(name, "x %v: [%d:%d] is not a non-empty range of axis %d (size %d)", x, start, end, a, x.shape[a])
	}
	outer, dim, inner := axisGeom(x.shape, a)
	ys := x.shape.Clone()
	ys[a] = end - start
	geom := blockGeom{outer: outer, width: (end - start) * inner, ld: dim * inner, off: int64(start * inner)}
	var y *Tensor
	if outer == 1 {
		y = g.view(x, ys, geom.off)
	} else {
		y = g.newTensor(kAct, ys, x.dtype)
	}
	n := g.add(opSlice, name, []*Tensor{x}, []*Tensor{y})
	n.attr = &sliceAttr{geom}
	if outer > 1 {
		n.emit = func(e *emitCtx) []gpu.Call {
			xv := e.v(x)
			return []gpu.Call{gpu.Copy2D{X: xv.Slice(geom.off, xv.Len-geom.off), Y: e.v(y), Rows: outer, Cols: geom.width, LdX: geom.ld}}
		}
	}
	return y
}

// scatterBlock adds (or, into a fresh gradient, writes) the gradient d of a
// block back into the gradient of the tensor x it came from.
func (b *backCtx) scatterBlock(x, d *Tensor, geom blockGeom) {
	bn := b.begin(d)
	dx, acc := b.acc(bn, x)
	zeros := b.g.zeros(zeroChunk)
	bn.ins = append(bn.ins, zeros)
	bn.emit = func(e *emitCtx) []gpu.Call {
		var calls []gpu.Call
		if !acc && (geom.outer*geom.width != x.Numel()) {
			calls = zeroFill(e.v(dx), e.v(zeros))
		}
		dv := e.v(dx)
		return append(calls, gpu.Copy2D{X: e.v(d), Y: dv.Slice(geom.off, dv.Len-geom.off), Rows: geom.outer, Cols: geom.width,
			LdY: geom.ld, Accumulate: acc})
	}
}

func sliceGrad(b *backCtx, n *node) {
	b.scatterBlock(n.ins[0], b.grad(n.outs[0]), n.attr.(*sliceAttr).geom)
}

type concatAttr struct{ geoms []blockGeom }

// Concat joins tensors along axis; their other dimensions must agree.
func (g *Graph) Concat(ax int, xs ...*Tensor) *Tensor {
	name := g.opName("concat")
	if len(xs) == 0 {
		return g.failf(name, "nothing to concatenate")
	}
	if !g.check(name, xs...) {
		return g.invalid()
	}
	a, ok := axis(ax, xs[0].shape.Rank())
	if !ok {
		return g.failf(name, "x0 %v has no axis %d", xs[0], ax)
	}
	ys := xs[0].shape.Clone()
	ys[a] = 0
	for i, x := range xs {
		bad := x.dtype != xs[0].dtype || x.shape.Rank() != ys.Rank()
		for d := 0; !bad && d < ys.Rank(); d++ {
			bad = d != a && x.shape[d] != ys[d]
		}
		if bad {
			return g.failf(name, "x0 %v and x%d %v: only axis %d may differ (and the dtype may not)", xs[0], i, x, a)
		}
		ys[a] += x.shape[a]
	}
	if xs[0].dtype != gpu.F32 && xs[0].dtype != gpu.I32 {
		return g.failf(name, "dtype %s", xs[0].dtype)
	}
	outer, dim, inner := axisGeom(ys, a)
	at := &concatAttr{}
	pos := 0
	for _, x := range xs {
		w := x.shape[a] * inner
		at.geoms = append(at.geoms, blockGeom{outer: outer, width: w, ld: dim * inner, off: int64(pos * inner)})
		pos += x.shape[a]
	}
	y := g.newTensor(kAct, ys, xs[0].dtype)
	n := g.add(opConcat, name, append([]*Tensor(nil), xs...), []*Tensor{y})
	n.attr = at
	n.emit = func(e *emitCtx) []gpu.Call {
		yv := e.v(y)
		calls := make([]gpu.Call, len(xs))
		for i, x := range xs {
			gm := at.geoms[i]
			calls[i] = gpu.Copy2D{X: e.v(x), Y: yv.Slice(gm.off, yv.Len-gm.off), Rows: gm.outer, Cols: gm.width, LdY: gm.ld}
		}
		return calls
	}
	return y
}

func concatGrad(b *backCtx, n *node) {
	at := n.attr.(*concatAttr)
	dy := b.grad(n.outs[0])
	for i, x := range n.ins {
		if !b.needs(n, x) {
			continue
		}
		gm := at.geoms[i]
		bn := b.begin(dy)
		dx, acc := b.acc(bn, x)
		bn.emit = func(e *emitCtx) []gpu.Call {
			dv := e.v(dy)
			return []gpu.Call{gpu.Copy2D{X: dv.Slice(gm.off, dv.Len-gm.off), Y: e.v(dx), Rows: gm.outer, Cols: gm.width,
				LdX: gm.ld, Accumulate: acc}}
		}
	}
}
