package graph

import (
	"blip/gpu"
)

// Sum and mean reductions, over the last dimension or over everything. The
// backward pass broadcasts the output gradient with a rank-1 Gemm against a
// vector of ones (exact: each element is dy * 1 * alpha).

var opReduce = defOp("reduce", reduceGrad)

type reduceAttr struct {
	all   bool // over every element (else over the last dimension)
	alpha float32
}

// Sum returns the sum of all elements of x: a scalar.
func (g *Graph) Sum(x *Tensor) *Tensor { return g.reduce(x, true, false) }

// Mean returns the mean of all elements of x: a scalar.
func (g *Graph) Mean(x *Tensor) *Tensor { return g.reduce(x, true, true) }

// SumLast sums x (..., C) over its last dimension: (...).
func (g *Graph) SumLast(x *Tensor) *Tensor { return g.reduce(x, false, false) }

// MeanLast averages x (..., C) over its last dimension: (...).
func (g *Graph) MeanLast(x *Tensor) *Tensor { return g.reduce(x, false, true) }

func (g *Graph) reduce(x *Tensor, all, mean bool) *Tensor {
	name := g.opName("reduce")
	if !g.check(name, x) || !g.needF32(name, []string{"x"}, x) {
		return g.invalid()
	}
	rows, cols := x.shape.Rows(), x.shape.Last()
	var ys Shape
	if all {
		rows, cols, ys = 1, x.Numel(), Shape{}
	} else {
		if x.shape.Rank() == 0 {
			return g.failf(name, "x %v is a scalar: no last dimension to reduce", x)
		}
		ys = x.shape[:x.shape.Rank()-1]
	}
	op, alpha := gpu.ReduceSum, float32(1)
	if mean {
		op, alpha = gpu.ReduceMean, 1/float32(cols)
	}
	y := g.act(ys)
	n := g.add(opReduce, name, []*Tensor{x}, []*Tensor{y})
	n.attr = &reduceAttr{all: all, alpha: alpha}
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.Reduce{Op: op, X: e.v(x), Y: e.v(y), Rows: rows, Cols: cols}}
	}
	return y
}

func reduceGrad(b *backCtx, n *node) {
	a := n.attr.(*reduceAttr)
	x := n.ins[0]
	dy := b.grad(n.outs[0])
	rows, cols := x.shape.Rows(), x.shape.Last()
	ones := b.g.ones(cols)
	bn := b.begin(dy, ones)
	dx, acc := b.acc(bn, x)
	bn.emit = func(e *emitCtx) []gpu.Call {
		if a.all {
			// Every row of dx is dy[0] * ones: batched over rows, both
			// operands shared (stride 0).
			return []gpu.Call{gpu.Gemm{A: e.v(dy), B: e.vn(ones, cols), C: e.v(dx), Batch: rows, M: 1, N: cols, K: 1,
				Alpha: a.alpha, Beta: beta(acc)}}
		}
		// dx (rows, cols) = dy (rows, 1) @ ones (1, cols)
		return []gpu.Call{gpu.Gemm{A: e.v(dy), B: e.vn(ones, cols), C: e.v(dx), M: rows, N: cols, K: 1,
			Alpha: a.alpha, Beta: beta(acc)}}
	}
}
