package graph

import (
	"fmt"

	"blip/gpu"
)

// Config says what a plan computes.
type Config struct {
	// Outputs stay readable after Run (Plan.ReadF32) until the next Run.
	Outputs []*Tensor
	// Loss, when set, makes a training plan: the backward pass is built,
	// and the gradient of Loss is added to the gradient of every
	// parameter it depends on (unless Frozen). Without Loss the plan is
	// inference only (no-grad): no backward, no saved activations, and
	// memory is reused as soon as a tensor's last reader has run.
	Loss *Tensor
	// LossGrad is the upstream gradient of Loss: an f32 input of Loss's
	// shape. Nil means LossScale (0 means 1) for every element.
	LossGrad  *Tensor
	LossScale float32
	// GradInputs are f32 inputs whose gradients the plan computes
	// (Plan.Grad); gradient checks use them.
	GradInputs []*Tensor
	// DropoutOff turns every dropout into the identity (evaluation).
	DropoutOff bool
	// LowActivations keeps the activations that only linear layers over
	// 16-bit weight copies (or attention) read, a LayerNorm's output, an
	// MLP's hidden layer, in the weights' type (low_activations.go):
	// exact under fp16 weights, half the bytes. Training plans do it
	// under fp16 only, where the weight gradients too read f16 inputs.
	// Decoding's plans leave it off (their products have a few rows).
	LowActivations bool
	// Bind gives inputs memory the plan does not own: each runs on the
	// view given (of its size and type, on the plan's backend: the calls'
	// checks refuse another's), typically
	// an output of another plan, which then needs no copy between the two.
	// The owner must keep the memory until this plan is closed.
	Bind map[*Tensor]gpu.View
}

// Compile plans g for backend be: it keeps the nodes the outputs and loss
// need, builds the backward pass of a training plan, gives every tensor
// memory (one arena, or a few, with memory reused across tensors whose
// lifetimes do not overlap) and records each node's kernel calls once. Every
// Param used must be allocated on be.
func (g *Graph) Compile(be gpu.Backend, cfg Config) (*Plan, error) {
	if g.err != nil {
		return nil, g.err
	}
	if be == nil {
		return nil, fmt.Errorf("graph: Compile without a backend")
	}
	check := func(what string, t *Tensor) error {
		switch {
		case t == nil:
			return fmt.Errorf("graph: Compile: %s is nil", what)
		case t.g != g:
			return fmt.Errorf("graph: Compile: %s %v belongs to another graph", what, t)
		case !t.Valid():
			return fmt.Errorf("graph: Compile: %s is invalid", what)
		}
		return nil
	}
	targets := append([]*Tensor(nil), cfg.Outputs...)
	for i, t := range cfg.Outputs {
		if err := check(fmt.Sprintf("output %d", i), t); err != nil {
			return nil, err
		}
	}
	for t, v := range cfg.Bind {
		if err := check("bound input", t); err != nil {
			return nil, err
		}
		switch {
		case t.kind != kInput || t.base != nil:
			return nil, fmt.Errorf("graph: Compile: bound tensor %v is not an input", t)
		case v.Buf == nil || v.Len != int64(t.Numel()) || v.DType != t.dtype:
			return nil, fmt.Errorf("graph: Compile: input %q bound to %d %s elements, want %d %s", t.name, v.Len, v.DType, t.Numel(), t.dtype)
		}
	}
	training := cfg.Loss != nil
	if training {
		if err := check("loss", cfg.Loss); err != nil {
			return nil, err
		}
		if cfg.Loss.dtype != gpu.F32 {
			return nil, fmt.Errorf("graph: Compile: loss %v is not f32", cfg.Loss)
		}
		targets = append(targets, cfg.Loss)
		if cfg.LossGrad != nil {
			if err := check("loss gradient", cfg.LossGrad); err != nil {
				return nil, err
			}
			if cfg.LossGrad.kind != kInput || cfg.LossGrad.dtype != gpu.F32 || !cfg.LossGrad.shape.Equal(cfg.Loss.shape) {
				return nil, fmt.Errorf("graph: Compile: loss gradient %v must be an f32 input of the loss's shape %v", cfg.LossGrad, cfg.Loss.shape)
			}
		}
	} else if len(cfg.GradInputs) > 0 || cfg.LossGrad != nil {
		return nil, fmt.Errorf("graph: Compile: gradients asked for without a Loss")
	}
	for i, t := range cfg.GradInputs {
		if err := check(fmt.Sprintf("gradient input %d", i), t); err != nil {
			return nil, err
		}
		if t.kind != kInput || t.dtype != gpu.F32 {
			return nil, fmt.Errorf("graph: Compile: gradient input %v is not an f32 input", t)
		}
	}

	fwd := g.needed(targets)
	for _, n := range fwd {
		for _, t := range n.ins {
			if t.kind == kParam {
				if be := t.param.ps.be; be == nil {
					return nil, fmt.Errorf("graph: param %q is not allocated (Params.Alloc)", t.name)
				}
				if t.param.ps.be != be {
					return nil, fmt.Errorf("graph: param %q is allocated on %s, not on %s", t.name, t.param.ps.be.Name(), be.Name())
				}
			}
		}
	}

	var bwd []*node
	gradOf := map[*Tensor]*Tensor{}
	if training {
		b := &backCtx{g: g, rg: map[*Tensor]bool{}, grads: map[*Tensor]*Tensor{}, owned: map[*Tensor]bool{}, base: len(fwd)}
		for _, t := range cfg.GradInputs {
			b.rg[t] = true
		}
		for _, n := range fwd {
			for _, t := range n.ins {
				if t.kind == kParam && !t.param.Frozen {
					b.rg[t] = true
				}
			}
			if n.op.grad == nil || len(n.outs) == 0 {
				continue
			}
			for _, t := range n.ins {
				if b.needs(n, t) {
					b.rg[n.outs[0]] = true
					break
				}
			}
		}
		if !b.rg[cfg.Loss] {
			return nil, fmt.Errorf("graph: Compile: the loss %v depends on no trainable parameter or gradient input", cfg.Loss)
		}
		seed := cfg.LossGrad
		if seed == nil {
			scale := cfg.LossScale
			if scale == 0 {
				scale = 1
			}
			seed = g.view(g.filled(scale, cfg.Loss.Numel()), cfg.Loss.shape, 0)
		}
		if err := b.run(fwd, cfg.Loss, seed); err != nil {
			return nil, err
		}
		for _, t := range cfg.GradInputs {
			gt := b.grads[t]
			if gt == nil {
				return nil, fmt.Errorf("graph: Compile: no gradient reaches input %q from the loss", t.name)
			}
			gradOf[t] = gt
		}
		bwd = b.nodes
	}
	return newPlan(be, g, cfg, fwd, bwd, gradOf)
}

// needed returns, in graph order, the nodes that targets depend on.
func (g *Graph) needed(targets []*Tensor) []*node {
	want := map[*Tensor]bool{}
	for _, t := range targets {
		want[t] = true
	}
	keep := make([]bool, len(g.nodes))
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		for _, t := range n.outs {
			if want[t] {
				keep[i] = true
				break
			}
		}
		if keep[i] {
			for _, t := range n.ins {
				want[t] = true
			}
		}
	}
	var out []*node
	for i, n := range g.nodes {
		if keep[i] {
			out = append(out, n)
		}
	}
	return out
}
