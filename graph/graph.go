package graph

import (
	"fmt"
	"math"
	"strings"

	"blip/gpu"
)

// Graph records tensor operations. Building an op checks its shapes at once;
// the first failure is kept (Err) and every later op returns an invalid
// tensor, so model code reads straight through and checks one error at the
// end, as with bufio.Scanner. Compile turns a graph into a Plan.
//
// A Graph is not safe for concurrent use.
type Graph struct {
	tensors []*Tensor
	nodes   []*node
	inputs  map[string]*Tensor
	params  map[*Param]*Tensor
	pgrads  map[*Param]*Tensor
	consts  map[string]*Tensor
	scope   []string
	err     error
	dropout int // dropout ops so far: each gets its own random stream
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{
		inputs: map[string]*Tensor{},
		params: map[*Param]*Tensor{},
		pgrads: map[*Param]*Tensor{},
		consts: map[string]*Tensor{},
	}
}

// Error is a graph-building error: which op, and what is wrong with which
// operands (their shapes and where they come from).
type Error struct {
	Op  string // op name with its scope, such as "text.layer.0/linear#12"
	Msg string
}

func (e *Error) Error() string { return "graph: " + e.Op + ": " + e.Msg }

// Err returns the first error met while building, or nil.
func (g *Graph) Err() error { return g.err }

// Scope prefixes the names of ops built until the returned function is
// called, so that errors and profiles say where an op sits:
//
//	defer g.Scope("text_encoder.layer.0.attention")()
func (g *Graph) Scope(name string) func() {
	g.scope = append(g.scope, name)
	n := len(g.scope)
	return func() { g.scope = g.scope[:n-1] }
}

// opName is the name the next node built for op gets.
func (g *Graph) opName(op string) string {
	name := fmt.Sprintf("%s#%d", op, len(g.nodes))
	if len(g.scope) > 0 {
		name = strings.Join(g.scope, "/") + "/" + name
	}
	return name
}

// failf records an error (the first one wins) and returns an invalid
// tensor for the op to return.
func (g *Graph) failf(op, format string, args ...any) *Tensor {
	if g.err == nil {
		g.err = &Error{Op: op, Msg: fmt.Sprintf(format, args...)}
	}
	return g.invalid()
}

func (g *Graph) invalid() *Tensor { return &Tensor{g: g, kind: kInvalid, id: -1} }

// check validates an op's operands: non-nil, of this graph, built without
// error. It returns false when the op must return g.invalid() (the error is
// recorded, or was already).
func (g *Graph) check(op string, ts ...*Tensor) bool {
	if g.err != nil {
		return false
	}
	for i, t := range ts {
		switch {
		case t == nil:
			g.failf(op, "operand %d is nil", i)
			return false
		case t.g != g:
			g.failf(op, "operand %d (%v) belongs to another graph", i, t)
			return false
		case t.kind == kInvalid:
			g.failf(op, "operand %d comes from a failed op", i)
			return false
		}
	}
	return true
}

// needF32 records an error unless every t is f32.
func (g *Graph) needF32(op string, names []string, ts ...*Tensor) bool {
	for i, t := range ts {
		if t.dtype != gpu.F32 {
			g.failf(op, "%s %v must be f32", names[i], t)
			return false
		}
	}
	return true
}

func (g *Graph) newTensor(kind tensorKind, shape Shape, dtype gpu.DType) *Tensor {
	t := &Tensor{g: g, id: len(g.tensors), shape: shape.Clone(), dtype: dtype, kind: kind}
	g.tensors = append(g.tensors, t)
	return t
}

// act returns a new f32 activation of the given shape.
func (g *Graph) act(shape Shape) *Tensor { return g.newTensor(kAct, shape, gpu.F32) }

// view returns a tensor of the given shape sharing base's storage from
// element off.
func (g *Graph) view(base *Tensor, shape Shape, off int64) *Tensor {
	t := g.newTensor(kAct, shape, base.dtype)
	t.base, t.off = base, off
	return t
}

// add appends a node for op with the given operands and results.
func (g *Graph) add(op *opDef, name string, ins, outs []*Tensor) *node {
	n := &node{id: len(g.nodes), op: op, name: name, ins: ins, outs: outs}
	for _, t := range outs {
		t.src = n
	}
	g.nodes = append(g.nodes, n)
	return n
}

// Input declares a tensor the caller writes before running a plan (Plan.
// WriteF32, Plan.WriteI32). Inputs keep their values between runs.
func (g *Graph) Input(name string, dtype gpu.DType, shape ...int) *Tensor {
	op := fmt.Sprintf("input %q", name)
	if g.err != nil {
		return g.invalid()
	}
	if _, dup := g.inputs[name]; dup {
		return g.failf(op, "an input of this name exists already")
	}
	if !Shape(shape).valid() {
		return g.failf(op, "shape %v has a dimension <= 0", Shape(shape))
	}
	if dtype != gpu.F32 && dtype != gpu.I32 {
		return g.failf(op, "dtype %s: inputs are f32 or i32", dtype)
	}
	t := g.newTensor(kInput, shape, dtype)
	t.name = name
	g.inputs[name] = t
	return t
}

// InputByName returns the input of that name, or nil.
func (g *Graph) InputByName(name string) *Tensor { return g.inputs[name] }

// Const declares an f32 constant, written to the device when a plan is made.
func (g *Graph) Const(name string, data []float32, shape ...int) *Tensor {
	op := fmt.Sprintf("const %q", name)
	if g.err != nil {
		return g.invalid()
	}
	if !Shape(shape).valid() || len(data) != Shape(shape).Numel() {
		return g.failf(op, "%d values for shape %v", len(data), Shape(shape))
	}
	t := g.newTensor(kConst, shape, gpu.F32)
	t.name, t.f32 = name, append([]float32(nil), data...)
	return t
}

// ConstI32 declares an int32 constant (position ids, say).
func (g *Graph) ConstI32(name string, data []int32, shape ...int) *Tensor {
	op := fmt.Sprintf("const %q", name)
	if g.err != nil {
		return g.invalid()
	}
	if !Shape(shape).valid() || len(data) != Shape(shape).Numel() {
		return g.failf(op, "%d values for shape %v", len(data), Shape(shape))
	}
	t := g.newTensor(kConst, shape, gpu.I32)
	t.name, t.i32 = name, append([]int32(nil), data...)
	return t
}

// filled returns the shared f32 constant of at least n elements that all
// equal v; emitters slice the first n elements (emitCtx.vn). It grows while
// the graph (and its backward pass) is built, before memory is planned.
func (g *Graph) filled(v float32, n int) *Tensor {
	key := fmt.Sprintf("filled:%08x", math.Float32bits(v))
	t := g.consts[key]
	if t == nil {
		t = g.newTensor(kConst, Shape{n}, gpu.F32)
		t.name, t.fill = key, v
		g.consts[key] = t
	}
	if n > t.shape[0] {
		t.shape[0] = n
	}
	return t
}

func (g *Graph) ones(n int) *Tensor  { return g.filled(1, n) }
func (g *Graph) zeros(n int) *Tensor { return g.filled(0, n) }

// Param returns the tensor of parameter p in this graph; using p several
// times (tied weights) yields the same tensor, and its gradient sums over
// every use.
func (g *Graph) Param(p *Param) *Tensor {
	if g.err != nil {
		return g.invalid()
	}
	if p == nil {
		return g.failf("param", "nil *Param")
	}
	if t := g.params[p]; t != nil {
		return t
	}
	t := g.newTensor(kParam, p.shape, gpu.F32)
	t.name, t.param = p.name, p
	g.params[p] = t
	return t
}

// paramGrad is the tensor of p's persistent gradient.
func (g *Graph) paramGrad(p *Param) *Tensor {
	if t := g.pgrads[p]; t != nil {
		return t
	}
	t := g.newTensor(kParamGrad, p.shape, gpu.F32)
	t.name, t.param = p.name, p
	g.pgrads[p] = t
	return t
}
