package graph

import (
	"fmt"

	"blip/gpu"
)

// tensorKind says where a tensor's storage comes from.
type tensorKind uint8

const (
	kAct       tensorKind = iota // produced by a node: arena memory
	kInput                       // written by the caller before Run: persistent arena memory
	kConst                       // written once when the plan is made
	kParam                       // a Param's value (its own buffer)
	kParamGrad                   // a Param's gradient (its own buffer)
	kInvalid                     // the result of an op that failed to build
)

// Tensor is a typed n-dimensional array in a Graph: an input, a parameter, a
// constant or the output of an op. It holds no memory itself: a Plan gives
// every tensor a view into device memory when the graph is compiled.
type Tensor struct {
	g     *Graph
	id    int
	name  string // inputs, params, consts: their name
	shape Shape
	dtype gpu.DType
	kind  tensorKind
	param *Param
	src   *node // producing node (nil for leaves)

	// A view (reshape, contiguous slice, aliased gradient) shares the
	// storage of base, starting off elements into it.
	base *Tensor
	off  int64

	// Constants: the values written when the plan is made. A shared
	// constant (ones, zeros) may grow while the graph is built; its data
	// is then made by fill.
	f32  []float32
	i32  []int32
	fill float32
}

// Shape returns the tensor's dimensions (do not modify).
func (t *Tensor) Shape() Shape { return t.shape }

// DType is the element type.
func (t *Tensor) DType() gpu.DType { return t.dtype }

// Numel is the number of elements.
func (t *Tensor) Numel() int { return t.shape.Numel() }

// Name is the name of an input, parameter or constant, and the producing
// op's name otherwise.
func (t *Tensor) Name() string {
	if t.name != "" || t.src == nil {
		return t.name
	}
	return t.src.name
}

// Graph is the graph t belongs to.
func (t *Tensor) Graph() *Graph { return t.g }

// Valid reports whether t was built without error.
func (t *Tensor) Valid() bool { return t != nil && t.kind != kInvalid }

// String describes t for error messages: shape, type and origin.
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	return fmt.Sprintf("%v %s %s", t.shape, t.dtype, t.origin())
}

func (t *Tensor) origin() string {
	switch t.kind {
	case kInput:
		return fmt.Sprintf("input %q", t.name)
	case kConst:
		return fmt.Sprintf("const %q", t.name)
	case kParam:
		return fmt.Sprintf("param %q", t.name)
	case kParamGrad:
		return fmt.Sprintf("grad of param %q", t.name)
	case kInvalid:
		return "from a failed op"
	}
	if t.src != nil {
		return "from " + t.src.name
	}
	return fmt.Sprintf("tensor #%d", t.id)
}

// root is the tensor that owns t's storage, and t's offset into it.
func (t *Tensor) root() (*Tensor, int64) {
	off := int64(0)
	for t.base != nil {
		off += t.off
		t = t.base
	}
	return t, off
}

// bytes is the size of t's elements in bytes.
func (t *Tensor) bytes() int64 { return int64(t.Numel()) * t.dtype.Size() }
