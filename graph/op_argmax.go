package graph

import (
	"blip/gpu"
)

// ArgMax for inference (greedy decoding, retrieval ranks): integer output,
// so no gradient.

var opArgMax = defNoGradOp("argmax", "its output is integer indices, piecewise constant in x")

// ArgMax returns the index of the largest element of each row of x (..., C)
// as i32 (...); ties go to the lowest index.
func (g *Graph) ArgMax(x *Tensor) *Tensor {
	name := g.opName("argmax")
	if !g.check(name, x) || !g.needF32(name, []string{"x"}, x) {
		return g.invalid()
	}
	if x.shape.Rank() == 0 {
		return g.failf(name, "x %v is a scalar", x)
	}
	y := g.newTensor(kAct, x.shape[:x.shape.Rank()-1], gpu.I32)
	n := g.add(opArgMax, name, []*Tensor{x}, []*Tensor{y})
	n.emit = func(e *emitCtx) []gpu.Call {
		return []gpu.Call{gpu.ArgMax{X: e.v(x), Y: e.v(y), Rows: x.shape.Rows(), Cols: x.shape.Last()}}
	}
	return y
}
