package graph

import (
	"fmt"

	"blip/gpu"
)

// backCtx builds the backward pass: Compile walks the forward nodes in
// reverse and calls each one's gradient rule, which adds backward nodes.
//
// Gradient buffers follow llm.c's discipline without its memsets: the first
// contribution to a tensor's gradient writes it, later ones add to it
// (Gemm with Beta 1, accumulating kernels, or an add), and a parameter's
// gradient is always added to, since it accumulates across runs.
//
// Ownership: once a tensor's producer runs its rule, every contribution to
// the tensor's gradient has been made (reverse topological order) and the
// rule is its only reader. The rule may then overwrite that gradient in
// place (kernels whose output may alias their input) and hand its memory on
// as the gradient of an input (a reshape, the first operand of an add):
// no copy, no extra memory. Only gradients made in this pass are ever
// overwritten; an upstream gradient the caller supplies is not.
type backCtx struct {
	g     *Graph
	rg    map[*Tensor]bool    // requires grad
	grads map[*Tensor]*Tensor // gradient of each forward tensor so far
	owned map[*Tensor]bool    // roots made here, which rules may overwrite
	nodes []*node
	cur   *node // forward node whose rule runs
	base  int   // id of the first backward node
}

// needs reports whether n must produce the gradient of its input t.
func (b *backCtx) needs(n *node, t *Tensor) bool {
	return t != nil && n.diff(t) && b.rg[t]
}

// grad is the gradient of t, or nil if none reaches it.
func (b *backCtx) grad(t *Tensor) *Tensor { return b.grads[t] }

// begin adds a backward node for the current forward node, reading ins.
func (b *backCtx) begin(ins ...*Tensor) *node {
	n := &node{id: b.base + len(b.nodes), name: b.cur.name + "/grad"}
	for _, t := range ins {
		if t != nil {
			n.ins = append(n.ins, t)
		}
	}
	b.nodes = append(b.nodes, n)
	return n
}

// temp adds an f32 scratch tensor to n.
func (b *backCtx) temp(n *node, shape Shape) *Tensor {
	t := b.g.act(shape)
	n.temps = append(n.temps, t)
	return t
}

// fresh makes a new gradient tensor for x, owned by this pass.
func (b *backCtx) fresh(x *Tensor) *Tensor {
	t := b.g.act(x.shape)
	b.owned[t] = true
	b.grads[x] = t
	return t
}

// acc returns where a kernel that can either write or add its result puts
// the gradient of x (Gemm's Beta, ColumnSum's and Copy2D's Accumulate), and
// whether it must add (a parameter, or a gradient some other use of x has
// begun) or may overwrite.
func (b *backCtx) acc(n *node, x *Tensor) (*Tensor, bool) {
	var t *Tensor
	acc := true
	switch {
	case x.kind == kParam:
		t = b.g.paramGrad(x.param)
	case b.grads[x] != nil:
		t = b.grads[x]
	default:
		t, acc = b.fresh(x), false
	}
	n.outs = append(n.outs, t)
	if acc {
		n.ins = append(n.ins, t)
	}
	return t, acc
}

// over is for kernels that overwrite their output. It returns the tensor w
// the kernel writes and, when the result must then be added to an existing
// gradient, that gradient (addTo; emit addInto after the kernel). When
// may is an owned gradient of x's size that the kernel may overwrite in
// place (its only reader is this rule), w reuses its memory; otherwise w is
// a new gradient or a temporary of n.
func (b *backCtx) over(n *node, x, may *Tensor) (w, addTo *Tensor) {
	reuse := may != nil && b.overwritable(may) && may.Numel() == x.Numel()
	if x.kind != kParam && b.grads[x] == nil {
		if reuse {
			w = b.g.view(may, x.shape, 0)
			b.grads[x] = w
		} else {
			w = b.fresh(x)
		}
		n.outs = append(n.outs, w)
		return w, nil
	}
	addTo, _ = b.acc(n, x)
	if reuse {
		w = may
		n.outs = append(n.outs, w)
	} else {
		w = b.temp(n, x.shape)
	}
	return w, addTo
}

// alias makes g (an owned gradient of x's size) the gradient of x without a
// copy, if x has none yet. It reports whether it did; if not, the rule must
// add g to x's gradient itself.
func (b *backCtx) alias(x, g *Tensor) bool {
	if x.kind == kParam || b.grads[x] != nil || !b.overwritable(g) || g.Numel() != x.Numel() {
		return false
	}
	b.grads[x] = b.g.view(g, x.shape, 0)
	return true
}

// overwritable reports whether t's memory is a gradient made by this pass.
func (b *backCtx) overwritable(t *Tensor) bool {
	r, _ := t.root()
	return b.owned[r]
}

// passThrough gives x the gradient dy unchanged (reshape, the operands of
// an add): by aliasing when possible, else by adding or copying it.
func (b *backCtx) passThrough(x, dy *Tensor) {
	if b.alias(x, dy) {
		return
	}
	n := b.begin(dy)
	dx, acc := b.acc(n, x)
	n.emit = func(e *emitCtx) []gpu.Call {
		if acc {
			return []gpu.Call{addInto(e.v(dx), e.v(dy))}
		}
		return []gpu.Call{gpu.Unary{Op: gpu.UnaryCopy, X: e.v(dy), Y: e.v(dx), N: dx.Numel()}}
	}
}

// finishOver returns the call that adds w to addTo, if any.
func finishOver(e *emitCtx, w, addTo *Tensor) []gpu.Call {
	if addTo == nil {
		return nil
	}
	return []gpu.Call{addInto(e.v(addTo), e.v(w))}
}

// buildBackward runs the gradient rules of fwd (in reverse) from the seed
// gradient of loss.
func (b *backCtx) run(fwd []*node, loss, seed *Tensor) error {
	b.grads[loss] = seed
	for i := len(fwd) - 1; i >= 0; i-- {
		n := fwd[i]
		if len(n.outs) == 0 || !b.rg[n.outs[0]] || b.grads[n.outs[0]] == nil {
			continue
		}
		if n.op.grad == nil {
			return fmt.Errorf("graph: %s has no gradient rule (%s)", n.name, n.op.noGrad)
		}
		b.cur = n
		n.op.grad(b, n)
	}
	return nil
}
