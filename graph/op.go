package graph

import (
	"sort"

	"blip/gpu"
)

// An op family (linear, layernorm, ...) is declared once with defOp, next to
// its forward builder and its gradient rule (op_<family>.go). The registry
// lets the coverage test check that every op has a gradient rule, or says
// why it has none, and a gradcheck case.

// gradFn is an op's gradient rule: given the gradient of the node's first
// output (b.grad(n.outs[0])), it adds backward nodes that accumulate the
// gradients of the node's differentiable inputs.
type gradFn func(b *backCtx, n *node)

type opDef struct {
	name   string
	grad   gradFn
	noGrad string // why the op has no gradient (non-differentiable ops)
}

var opRegistry = map[string]*opDef{}

// defOp declares a differentiable op family.
func defOp(name string, grad gradFn) *opDef {
	d := &opDef{name: name, grad: grad}
	opRegistry[name] = d
	return d
}

// defNoGradOp declares an op through which no gradient flows, with the
// reason.
func defNoGradOp(name, why string) *opDef {
	d := &opDef{name: name, noGrad: why}
	opRegistry[name] = d
	return d
}

// opNames lists the registered op families, sorted.
func opNames() []string {
	var s []string
	for n := range opRegistry {
		s = append(s, n)
	}
	sort.Strings(s)
	return s
}

// node is one step of a graph: an op's forward, or one backward step of a
// gradient rule. Its emit function turns it into kernel calls once every
// tensor has memory.
type node struct {
	id   int
	op   *opDef // nil for backward nodes
	name string
	ins  []*Tensor
	outs []*Tensor
	// saved are outputs only a gradient rule reads (LayerNorm's mean and
	// rstd, attention's log-sum-exp): a no-grad plan leaves them out and
	// emit must check e.has.
	saved []*Tensor
	// temps is scratch memory live only while the node runs; inferTemps
	// likewise, but only in no-grad plans (where a saved tensor would
	// otherwise have held the value).
	temps      []*Tensor
	inferTemps []*Tensor
	// inferReads are tensors only a no-grad plan's calls read besides ins
	// (the operands of an Add that a LayerNorm computes itself): their
	// memory must live through this node.
	inferReads []*Tensor
	// nondiff marks inputs no gradient flows to (masks, ids); i32 inputs
	// never get one.
	nondiff map[*Tensor]bool
	// lowRead, where set (backward nodes), is the 16-bit type in which the
	// node may read input t without changing its result, or F32
	// (low_activations.go; forward nodes are known by their op).
	lowRead func(t *Tensor) gpu.DType
	attr    any
	emit    func(e *emitCtx) []gpu.Call
}

// diff reports whether a gradient flows from n to its input t.
func (n *node) diff(t *Tensor) bool {
	return t.dtype == gpu.F32 && !n.nondiff[t]
}

// tensors lists every tensor n touches in a training plan or a no-grad one.
func (n *node) tensors(training bool) []*Tensor {
	ts := append(append([]*Tensor(nil), n.ins...), n.outs...)
	if training {
		ts = append(ts, n.saved...)
	} else {
		ts = append(append(ts, n.inferTemps...), n.inferReads...)
	}
	return append(ts, n.temps...)
}
