package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// loader declares parameters under their exact HF names and reads their
// values from a checkpoint (Checkpoint.Require, so a wrong shape is an error
// naming the key). The values are written once the set is allocated. The
// first error wins and later calls do nothing, so module constructors read
// straight through, as graph building does.
type loader struct {
	ps   *graph.Params
	ck   weightSource
	vals map[*graph.Param][]float32
	// stored is the checkpoint shape of parameters whose graph shape
	// differs (the patch convolution as a linear weight, say).
	stored map[string][]int
	err    error
}

// weightSource is where a loader reads values: a Checkpoint, or the
// in-memory state of pretraining (fresh initialisation, a resumed run).
type weightSource interface {
	Require(name string, shape ...int) ([]float32, error)
	Ignore(names ...string)
}

func newLoader(ck weightSource) *loader {
	return &loader{ps: graph.NewParams(), ck: ck, vals: map[*graph.Param][]float32{}, stored: map[string][]int{}}
}

// param declares name with the shape the graph uses and reads the stored
// tensor, whose shape must be stored (the checkpoint's own layout of the
// same elements: the conv weight [C,3,P,P] as a (C, 3*P*P) linear weight,
// say). A nil stored shape means the same as shape.
func (l *loader) param(name string, shape, stored []int) *graph.Param {
	if l.err != nil {
		return nil
	}
	if stored == nil {
		stored = shape
	} else {
		l.stored[name] = stored
	}
	v, err := l.ck.Require(name, stored...)
	if err != nil {
		l.err = err
		return nil
	}
	p, err := l.ps.New(name, shape...)
	if err != nil {
		l.err = err
		return nil
	}
	l.vals[p] = v
	return p
}

// write allocates the set on be and uploads every value.
func (l *loader) write(be gpu.Backend) error {
	if l.err != nil {
		return l.err
	}
	if err := l.ps.Alloc(be); err != nil {
		return err
	}
	for _, p := range l.ps.List() {
		if err := p.Write(l.vals[p]); err != nil {
			l.ps.Free()
			return err
		}
	}
	l.vals = nil
	return nil
}

// Linear is an nn.Linear: Weight (out, in) and an optional Bias (out).
type Linear struct {
	Weight, Bias *graph.Param
}

func (l *loader) linear(prefix string, out, in int) Linear {
	return Linear{
		Weight: l.param(prefix+".weight", []int{out, in}, nil),
		Bias:   l.param(prefix+".bias", []int{out}, nil),
	}
}

// Forward returns x @ W^T + b with an optional fused activation.
func (m Linear) Forward(g *graph.Graph, x *graph.Tensor, act gpu.Act) *graph.Tensor {
	var b *graph.Tensor
	if m.Bias != nil {
		b = g.Param(m.Bias)
	}
	return g.LinearAct(x, g.Param(m.Weight), b, act)
}

// LayerNorm is an nn.LayerNorm over the last dimension.
type LayerNorm struct {
	Weight, Bias *graph.Param
	Eps          float32
}

func (l *loader) layerNorm(prefix string, n int, eps float64) LayerNorm {
	return LayerNorm{
		Weight: l.param(prefix+".weight", []int{n}, nil),
		Bias:   l.param(prefix+".bias", []int{n}, nil),
		Eps:    float32(eps),
	}
}

// Forward normalises x.
func (m LayerNorm) Forward(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	return g.LayerNorm(x, g.Param(m.Weight), g.Param(m.Bias), m.Eps)
}

// hiddenAct maps a config's hidden_act to the fused activation. BLIP uses
// transformers' "gelu", the exact erf form; anything else is refused rather
// than silently approximated.
func hiddenAct(name string) (gpu.Act, error) {
	switch name {
	case "gelu":
		return gpu.ActGELU, nil
	}
	return gpu.ActNone, fmt.Errorf("blip: hidden_act %q is not supported (only \"gelu\")", name)
}

// maskNeg is the additive score of a masked key. transformers uses the
// float32 minimum; any value this negative gives the same zero weight, and
// a smaller magnitude keeps sums of masks finite.
const maskNeg = -1e30

// additiveMask turns a (B, T) f32 keep-mask of ones and zeros, as HF's
// attention_mask, into the additive key mask Attention takes:
// (mask - 1) * -maskNeg, the ones a (T) constant broadcast over the batch.
func additiveMask(g *graph.Graph, mask *graph.Tensor) *graph.Tensor {
	if !mask.Valid() || mask.Shape().Rank() != 2 {
		return g.Scale(mask, maskNeg) // keeps the first error; Attention names a bad shape
	}
	t := mask.Shape()[1]
	ones := make([]float32, t)
	for i := range ones {
		ones[i] = 1
	}
	return g.Scale(g.Sub(mask, g.Const(fmt.Sprintf("mask_ones%d", t), ones, t)), -maskNeg)
}
