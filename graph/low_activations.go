package graph

import (
	"blip/gpu"
)

// 16-bit activations (Config.LowActivations). An inference plan whose
// linear layers read 16-bit weight copies (Params.SetStorage) may keep, in
// the weights' type, each activation that only such layers read as their
// input x: a LayerNorm's output, another linear layer's (its GELU
// included) or a fused attention's (the output projection's input); and
// the q, k and v projections' outputs that only attention reads (the
// ViT's fused qkv, read in place; BERT's three). Under fp16 weights the
// products round all of these to f16 anyway (gpu.Gemm.F16,
// gpu.Attention.F16), so storing them in f16 changes no result and halves
// their memory and the traffic of writing and reading them; under bf16
// weights the stored values are rounded to bf16, as a bf16 framework
// stores them. Everything else (the residual stream, normalisation
// statistics, the plan's outputs, any input of another plan) stays fp32.
//
// Training plans (fp16 only) count the backward's reads too: a linear
// layer's weight gradient reads x rounded to f16 (node.lowRead), and so
// does attention's backward read Q, K and V; attention's backward reads O
// in fp32, which keeps attention's output fp32 there.

// lowMinRows: products over fewer rows (decoding, a short question) are
// bound by their weights, which they read whole for a few rows of
// activations; their inputs stay fp32, and so keep the backends' few-row
// kernels (Vulkan's gemm_rows reads f32 activations only).
const lowMinRows = 64

// lowActivations returns the roots of nodes' tensors that the plan stores
// in 16 bits, with their types.
func lowActivations(nodes []*node, cfg Config, training bool) map[*Tensor]gpu.DType {
	// The 16-bit type each root's readers take it in; refused once a
	// reader takes only f32 (any read not named below) or two disagree.
	want := map[*Tensor]gpu.DType{}
	refuse := map[*Tensor]bool{}
	read := func(t *Tensor, d gpu.DType) {
		r, _ := t.root()
		if refuse[r] {
			return
		}
		if training && d == gpu.BF16 {
			d = gpu.F32 // bf16 training multiplies fp32 activations
		}
		if prev, ok := want[r]; d == gpu.F32 || ok && prev != d {
			refuse[r] = true
			return
		}
		want[r] = d
	}
	for _, n := range nodes {
		if n.emit == nil && len(n.outs) == 1 && n.outs[0].base != nil {
			continue // a view: its readers read the root
		}
		for i, t := range n.ins {
			d := gpu.F32
			switch {
			case n.ins[0].shape.Rows() < lowMinRows:
			case n.lowRead != nil:
				d = n.lowRead(t)
			case n.op == opLinear && i == 0:
				d = lowWeightType(n.ins[1])
			case n.op == opAttention && i < 3:
				d = attentionInputType(n, t)
			}
			read(t, d)
		}
		for _, ts := range [][]*Tensor{n.inferReads, n.inferTemps} {
			for _, t := range ts {
				read(t, gpu.F32)
			}
		}
	}
	outputs := map[*Tensor]bool{}
	for _, t := range cfg.Outputs {
		r, _ := t.root()
		outputs[r] = true
	}
	low := map[*Tensor]gpu.DType{}
	for _, n := range nodes {
		if !lowProducer(n) {
			continue
		}
		y := n.outs[0]
		d, ok := want[y]
		if !ok || refuse[y] || outputs[y] || y.base != nil || y.kind != kAct || y.dtype != gpu.F32 {
			continue
		}
		if _, bound := cfg.Bind[y]; bound {
			continue
		}
		low[y] = d
	}
	// Attention reads q, k and v of one type: where they are separate
	// tensors and not all three were lowered alike (k and v from another
	// plan's inputs, say), they stay fp32, which every reader takes. Each
	// pass only removes, so this ends.
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if n.op != opAttention {
				continue
			}
			var roots [3]*Tensor
			for i := range roots {
				roots[i], _ = n.ins[i].root()
			}
			d, ok := low[roots[0]]
			same := ok
			for _, r := range roots[1:] {
				e, ok := low[r]
				same = same && ok && e == d
			}
			for _, r := range roots {
				if _, ok := low[r]; ok && !same {
					delete(low, r)
					changed = true
				}
			}
		}
	}
	return low
}

// lowProducer reports whether n's output may be written in 16 bits: a
// linear layer's (one Gemm), a LayerNorm's, a fused attention's.
func lowProducer(n *node) bool {
	if len(n.outs) == 0 {
		return false
	}
	switch n.op {
	case opLinear, opLayerNorm:
		return true
	case opAttention:
		a, ok := n.attr.(*attnAttr)
		return ok && a.fused
	}
	return false
}

// attentionInputType is the type attention node n may read its input t
// (one of q, k, v) in: that of the linear layer that produced it, where n
// runs the fused kernel and, for f16, rounds its inputs to f16 itself
// (gpu.Attention.F16); F32 otherwise. (q, k and v must then be lowered
// alike: lowActivations' last pass.)
func attentionInputType(n *node, t *Tensor) gpu.DType {
	a, ok := n.attr.(*attnAttr)
	r, _ := t.root()
	if !ok || !a.fused || r.src == nil || r.src.op != opLinear {
		return gpu.F32
	}
	d := lowWeightType(r.src.ins[1])
	if d == gpu.F16 && !a.f16(t.g) {
		return gpu.F32
	}
	return d
}

// lowWeightType is the type of the 16-bit copy that a linear layer with
// weight w reads, or F32 where it reads fp32.
func lowWeightType(w *Tensor) gpu.DType {
	r, _ := w.root()
	if r.kind != kParam || r.param.ps.low == nil {
		return gpu.F32
	}
	return r.param.ps.low.dtype
}
