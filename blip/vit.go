package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// VisionEmbeddings is BlipVisionEmbeddings: the patch projection (a stride-P
// convolution, computed as a Linear over host-side patches), the class
// embedding and learned position embeddings.
type VisionEmbeddings struct {
	// Patch holds patch_embedding.weight [C,3,P,P] as its (C, 3*P*P)
	// flattening (same memory, same gradient layout) and its bias.
	Patch Linear
	// Class is class_embedding [1,1,C] as (1, C); Position is
	// position_embedding [1,N+1,C] as (N+1, C).
	Class, Position *graph.Param
	cfg             *VisionConfig
}

func (l *loader) visionEmbeddings(pre string, v *VisionConfig) *VisionEmbeddings {
	c, p, ch := v.HiddenSize, v.PatchSize, v.NumChannels
	return &VisionEmbeddings{
		Patch: Linear{
			Weight: l.param(pre+"patch_embedding.weight", []int{c, ch * p * p}, []int{c, ch, p, p}),
			Bias:   l.param(pre+"patch_embedding.bias", []int{c}, nil),
		},
		Class:    l.param(pre+"class_embedding", []int{1, c}, []int{1, 1, c}),
		Position: l.param(pre+"position_embedding", []int{v.NumPositions(), c}, []int{1, v.NumPositions(), c}),
		cfg:      v,
	}
}

// Forward maps patches (B, N, 3*P*P) (see Patchify) to the token sequence
// (B, N+1, C): [CLS] then the patches, plus position embeddings.
func (m *VisionEmbeddings) Forward(g *graph.Graph, patches *graph.Tensor) *graph.Tensor {
	defer g.Scope("embeddings")()
	if !patches.Valid() || patches.Shape().Rank() != 3 {
		return g.Reshape(patches, 0) // records the error (or keeps the first)
	}
	b := patches.Shape()[0]
	x := m.Patch.Forward(g, patches, gpu.ActNone)
	// The class row is gathered B times (an embedding of id 0) so that its
	// gradient sums over the batch.
	zero := g.ConstI32(fmt.Sprintf("class_ids%d", b), make([]int32, b), b, 1)
	cls := g.Embedding(g.Param(m.Class), zero)
	x = g.Concat(1, cls, x)
	return g.Add(x, g.Param(m.Position))
}

// Patchify rearranges pixel values [B, ch, S, S] (S = ImageSize) into the
// (B, N, ch*P*P) rows the patch Linear takes: patch (i, j) in row-major
// order, each row in the conv weight's (channel, y, x) order, so that the
// Linear equals the stride-P convolution.
func Patchify(pixels []float32, batch int, v *VisionConfig) ([]float32, error) {
	s, p, ch := v.ImageSize, v.PatchSize, v.NumChannels
	if p <= 0 || s%p != 0 {
		return nil, fmt.Errorf("blip: image size %d is not a multiple of the patch size %d", s, p)
	}
	if len(pixels) != batch*ch*s*s {
		return nil, fmt.Errorf("blip: %d pixel values, want %d images of %dx%dx%d = %d", len(pixels), batch, ch, s, s, batch*ch*s*s)
	}
	gr := s / p
	out := make([]float32, 0, len(pixels))
	for b := range batch {
		img := pixels[b*ch*s*s:]
		for py := range gr {
			for px := range gr {
				for c := range ch {
					for y := range p {
						off := c*s*s + (py*p+y)*s + px*p
						out = append(out, img[off:off+p]...)
					}
				}
			}
		}
	}
	return out, nil
}

// VisionAttention is BlipAttention: fused qkv projection (q, k, v side by
// side, heads side by side within each) and an output projection.
type VisionAttention struct {
	QKV, Projection Linear
	Heads           int
}

// Forward is bidirectional multi-head self-attention over x (B, T, C).
func (m *VisionAttention) Forward(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	defer g.Scope("self_attn")()
	c := x.Shape().Last()
	qkv := m.QKV.Forward(g, x, gpu.ActNone)
	q, k, v := g.Slice(qkv, 2, 0, c), g.Slice(qkv, 2, c, 2*c), g.Slice(qkv, 2, 2*c, 3*c)
	a := g.Attention(q, k, v, graph.AttentionOpts{Heads: m.Heads})
	return m.Projection.Forward(g, a, gpu.ActNone)
}

// VisionLayer is BlipEncoderLayer: a pre-norm transformer block.
type VisionLayer struct {
	LayerNorm1 LayerNorm
	SelfAttn   VisionAttention
	LayerNorm2 LayerNorm
	FC1, FC2   Linear
	act        gpu.Act
}

// Forward returns x + attn(ln1(x)), then that plus mlp(ln2(.)).
func (m *VisionLayer) Forward(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	x = g.Add(x, m.SelfAttn.Forward(g, m.LayerNorm1.Forward(g, x)))
	h := m.FC1.Forward(g, m.LayerNorm2.Forward(g, x), m.act)
	return g.Add(x, m.FC2.Forward(g, h, gpu.ActNone))
}

// VisionModel is BlipVisionModel (under "vision_model."): embeddings,
// encoder layers and post_layernorm.
type VisionModel struct {
	Embeddings    *VisionEmbeddings
	Layers        []*VisionLayer
	PostLayerNorm LayerNorm
	Config        *VisionConfig
}

func (l *loader) visionModel(pre string, v *VisionConfig) *VisionModel {
	act, err := hiddenAct(v.HiddenAct)
	if err != nil && l.err == nil {
		l.err = err
	}
	c, eps := v.HiddenSize, v.LayerNormEps
	m := &VisionModel{Embeddings: l.visionEmbeddings(pre+"embeddings.", v), Config: v}
	for i := range v.NumHiddenLayers {
		p := fmt.Sprintf("%sencoder.layers.%d.", pre, i)
		m.Layers = append(m.Layers, &VisionLayer{
			LayerNorm1: l.layerNorm(p+"layer_norm1", c, eps),
			SelfAttn: VisionAttention{
				QKV:        l.linear(p+"self_attn.qkv", 3*c, c),
				Projection: l.linear(p+"self_attn.projection", c, c),
				Heads:      v.NumAttentionHeads,
			},
			LayerNorm2: l.layerNorm(p+"layer_norm2", c, eps),
			FC1:        l.linear(p+"mlp.fc1", v.IntermediateSize, c),
			FC2:        l.linear(p+"mlp.fc2", c, v.IntermediateSize),
			act:        act,
		})
	}
	m.PostLayerNorm = l.layerNorm(pre+"post_layernorm", c, eps)
	return m
}

// Forward returns last_hidden_state (B, N+1, C) for patches (B, N,
// 3*P*P) (see Patchify): post_layernorm applied to every token.
func (m *VisionModel) Forward(g *graph.Graph, patches *graph.Tensor) *graph.Tensor {
	defer g.Scope("vision_model")()
	x := m.Embeddings.Forward(g, patches)
	for i, layer := range m.Layers {
		end := g.Scope(fmt.Sprintf("layers.%d", i))
		x = layer.Forward(g, x)
		end()
	}
	return m.PostLayerNorm.Forward(g, x)
}

// Pooled returns HF's pooler_output (B, C): post_layernorm applied once more
// to the [CLS] row of last_hidden_state, which is already normalised (a
// transformers quirk kept for compatibility; BLIP's heads use the CLS row
// of last_hidden_state instead).
func (m *VisionModel) Pooled(g *graph.Graph, last *graph.Tensor) *graph.Tensor {
	return m.PostLayerNorm.Forward(g, FirstToken(g, last))
}

// FirstToken returns x[:, 0, :] of (B, T, C) as (B, C).
func FirstToken(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	y := g.Slice(x, 1, 0, 1)
	if !y.Valid() {
		return y
	}
	b := x.Shape()[0]
	return g.Reshape(y, b, y.Numel()/b)
}
