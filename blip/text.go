package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// TextEmbeddings is BlipTextEmbeddings: word plus absolute position
// embeddings, then LayerNorm (BLIP has no token types).
type TextEmbeddings struct {
	Word, Position *graph.Param
	LayerNorm      LayerNorm
}

// Forward embeds ids (B, T) i32 at positions 0..T-1: (B, T, H).
func (m *TextEmbeddings) Forward(g *graph.Graph, ids *graph.Tensor) *graph.Tensor {
	defer g.Scope("embeddings")()
	if !ids.Valid() || ids.Shape().Rank() != 2 {
		return g.Embedding(g.Param(m.Word), g.Reshape(ids, 0)) // records the error
	}
	t := ids.Shape()[1]
	pos := make([]int32, t)
	for i := range pos {
		pos[i] = int32(i)
	}
	return m.forwardAt(g, ids, g.ConstI32(fmt.Sprintf("position_ids%d", t), pos, t))
}

// ForwardAt embeds ids (B, T) i32 at the positions pos (T) i32, shared by
// every row (decoding with a KV cache: the new tokens sit after the cached
// ones): (B, T, H).
func (m *TextEmbeddings) ForwardAt(g *graph.Graph, ids, pos *graph.Tensor) *graph.Tensor {
	defer g.Scope("embeddings")()
	return m.forwardAt(g, ids, pos)
}

func (m *TextEmbeddings) forwardAt(g *graph.Graph, ids, pos *graph.Tensor) *graph.Tensor {
	p := g.Embedding(g.Param(m.Position), pos)
	return m.LayerNorm.Forward(g, g.Add(g.Embedding(g.Param(m.Word), ids), p))
}

// TextAttention is BlipTextAttention: query/key/value projections
// ("self.*") and the post-norm output block ("output.dense",
// "output.LayerNorm"). As cross-attention its key and value read the image
// states, of the vision width.
type TextAttention struct {
	Query, Key, Value Linear
	Dense             Linear
	LayerNorm         LayerNorm
	Heads             int
	// Dropout is BertSelfOutput's hidden dropout before the residual add
	// (training; 0 at inference).
	Dropout float32
}

// Forward returns LayerNorm(x + dense(attention(x, kv))) where keys and
// values come from kv (x itself for self-attention). mask is an additive
// (B, Tk) key mask or nil; causal hides later positions.
func (m *TextAttention) Forward(g *graph.Graph, x, kv, mask *graph.Tensor, causal bool) *graph.Tensor {
	k, v := m.KeyValue(g, kv)
	return m.Attend(g, x, k, v, mask, causal)
}

// Attend is Forward with the keys and values already projected (KeyValue's
// k and v, computed once and reused).
//
// Keys and values of one batch element (k and v (1, Tk, H)) serve every
// row of x (B, T, H) when there is no mask and no causal order: one image's
// states for all of its candidate texts (ITM re-ranking). The rows'
// queries are then one batch of B*T queries over those keys, the same
// arithmetic without B copies of the keys.
func (m *TextAttention) Attend(g *graph.Graph, x, k, v, mask *graph.Tensor, causal bool) *graph.Tensor {
	q := m.Query.Forward(g, x, gpu.ActNone)
	opts := graph.AttentionOpts{Heads: m.Heads, Mask: mask, Causal: causal}
	qs, ks := q.Shape(), k.Shape()
	if len(qs) == 3 && len(ks) == 3 && ks[0] == 1 && qs[0] > 1 && mask == nil && !causal {
		a := g.Attention(g.Reshape(q, 1, qs[0]*qs[1], qs[2]), k, v, opts)
		return m.Output(g, g.Reshape(a, qs[0], qs[1], qs[2]), x)
	}
	return m.Output(g, g.Attention(q, k, v, opts), x)
}

// KeyValue returns the key and value projections of kv, (B, Tk, H) each:
// what a KV cache keeps (the image's once per image for cross-attention).
func (m *TextAttention) KeyValue(g *graph.Graph, kv *graph.Tensor) (k, v *graph.Tensor) {
	return m.Key.Forward(g, kv, gpu.ActNone), m.Value.Forward(g, kv, gpu.ActNone)
}

// Output is the block after the attention: LayerNorm(x + dense(a)) for the
// attention result a (B, T, H) of the queries of x.
func (m *TextAttention) Output(g *graph.Graph, a, x *graph.Tensor) *graph.Tensor {
	return m.LayerNorm.Forward(g, g.Add(dropout(g, m.Dense.Forward(g, a, gpu.ActNone), m.Dropout), x))
}

// dropout applies g.Dropout when p > 0 (training modules), else nothing.
func dropout(g *graph.Graph, x *graph.Tensor, p float32) *graph.Tensor {
	if p > 0 {
		return g.Dropout(x, p)
	}
	return x
}

// TextLayer is BlipTextLayer: self-attention, cross-attention over image
// states when the config is a decoder (is_decoder) and image states are
// given, and a post-norm FFN.
type TextLayer struct {
	Attention      TextAttention
	CrossAttention *TextAttention // nil without is_decoder
	Intermediate   Linear
	Output         Linear
	OutputNorm     LayerNorm
	act            gpu.Act
	dropout        float32 // BertOutput's hidden dropout (training)
}

// FeedForward is the layer's post-norm FFN (intermediate, output):
// LayerNorm(x + output(act(intermediate(x)))).
func (l *TextLayer) FeedForward(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	h := l.Intermediate.Forward(g, x, l.act)
	return l.OutputNorm.Forward(g, g.Add(dropout(g, l.Output.Forward(g, h, gpu.ActNone), l.dropout), x))
}

// TextModel is BlipTextModel (text_encoder., text_decoder.bert.): the
// embeddings and the layers. BLIP's heads never use its pooler, which
// BlipForImageTextRetrieval and the decoder do not even have.
type TextModel struct {
	Embeddings *TextEmbeddings
	Layers     []*TextLayer
	Config     *TextConfig
	dropout    float32
}

// SetDropout turns on BERT's hidden dropout with probability p (after the
// embeddings and before each residual add) for training; 0 turns it off.
// transformers' attention-probability dropout is not applied: the fused
// attention kernels never materialise the probabilities.
func (m *TextModel) SetDropout(p float32) {
	m.dropout = p
	for _, l := range m.Layers {
		l.dropout = p
		l.Attention.Dropout = p
		if l.CrossAttention != nil {
			l.CrossAttention.Dropout = p
		}
	}
}

func (l *loader) textAttention(pre string, h, kvWidth, heads int, eps float64) *TextAttention {
	return &TextAttention{
		Query:     l.linear(pre+"self.query", h, h),
		Key:       l.linear(pre+"self.key", h, kvWidth),
		Value:     l.linear(pre+"self.value", h, kvWidth),
		Dense:     l.linear(pre+"output.dense", h, h),
		LayerNorm: l.layerNorm(pre+"output.LayerNorm", h, eps),
		Heads:     heads,
	}
}

func (l *loader) textModel(pre string, t *TextConfig) *TextModel {
	act, err := hiddenAct(t.HiddenAct)
	if err != nil && l.err == nil {
		l.err = err
	}
	h, eps := t.HiddenSize, t.LayerNormEps
	m := &TextModel{Config: t, Embeddings: &TextEmbeddings{
		Word:      l.param(pre+"embeddings.word_embeddings.weight", []int{t.VocabSize, h}, nil),
		Position:  l.param(pre+"embeddings.position_embeddings.weight", []int{t.MaxPositionEmbeddings, h}, nil),
		LayerNorm: l.layerNorm(pre+"embeddings.LayerNorm", h, eps),
	}}
	for i := range t.NumHiddenLayers {
		p := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		layer := &TextLayer{
			Attention:    *l.textAttention(p+"attention.", h, h, t.NumAttentionHeads, eps),
			Intermediate: l.linear(p+"intermediate.dense", t.IntermediateSize, h),
			Output:       l.linear(p+"output.dense", h, t.IntermediateSize),
			OutputNorm:   l.layerNorm(p+"output.LayerNorm", h, eps),
			act:          act,
		}
		if t.IsDecoder {
			layer.CrossAttention = l.textAttention(p+"crossattention.", h, t.EncoderHiddenSize, t.NumAttentionHeads, eps)
		}
		m.Layers = append(m.Layers, layer)
	}
	return m
}

// TextInput is what a text forward reads besides ids.
type TextInput struct {
	// Mask is HF's attention_mask as f32 (B, T): 1 keeps a token, 0 is
	// padding. Nil attends to every token.
	Mask *graph.Tensor
	// Causal makes each token see only itself and earlier ones (the
	// decoder).
	Causal bool
	// Image is the vision encoder's last_hidden_state (B, N, Cv) for the
	// cross-attention; nil runs text-only (the ITC text encoder).
	Image *graph.Tensor
	// ImageMask is an f32 (B, N) keep-mask over image tokens, or nil for
	// all of them (what BLIP always passes).
	ImageMask *graph.Tensor
	// CrossKV, instead of Image, gives layer i's cross-attention keys and
	// values (KeyValue of the image states, (B, N, H) each), computed
	// elsewhere once per image.
	CrossKV func(layer int) (k, v *graph.Tensor)
}

// Forward returns the last hidden states (B, T, H) for ids (B, T) i32.
// Cross-attention runs when in.Image is given; a model without it
// (is_decoder false) then records an error rather than ignoring the image.
func (m *TextModel) Forward(g *graph.Graph, ids *graph.Tensor, in TextInput) *graph.Tensor {
	return m.Encode(g, m.Embed(g, ids), in)
}

// Embed returns the embedding output (B, T, H) of ids (B, T): what Encode
// reads. Rows of it can be gathered (ITM's hard-negative texts) before
// encoding, as the rows of ids would be.
func (m *TextModel) Embed(g *graph.Graph, ids *graph.Tensor) *graph.Tensor {
	return dropout(g, m.Embeddings.Forward(g, ids), m.dropout)
}

// Encode runs the layers over embedded tokens x (B, T, H).
func (m *TextModel) Encode(g *graph.Graph, x *graph.Tensor, in TextInput) *graph.Tensor {
	var mask, imask *graph.Tensor
	if in.Mask != nil {
		mask = additiveMask(g, in.Mask)
	}
	if in.ImageMask != nil {
		imask = additiveMask(g, in.ImageMask)
	}
	for i, layer := range m.Layers {
		end := g.Scope(fmt.Sprintf("layer.%d", i))
		x = layer.Attention.Forward(g, x, x, mask, in.Causal)
		if in.Image != nil || in.CrossKV != nil {
			if layer.CrossAttention == nil {
				end()
				return g.Reshape(x, 0) // records an error: no cross-attention weights
			}
			if in.CrossKV != nil {
				k, v := in.CrossKV(i)
				x = layer.CrossAttention.Attend(g, x, k, v, imask, false)
			} else {
				x = layer.CrossAttention.Forward(g, x, in.Image, imask, false)
			}
		}
		x = layer.FeedForward(g, x)
		end()
	}
	return x
}
