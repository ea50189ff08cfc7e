package blip

import (
	"blip/gpu"
	"blip/graph"
)

// LMHead is BlipTextOnlyMLMHead ("cls.predictions."): the transform
// (dense, GELU, LayerNorm) then the decoder Linear, whose weight is the
// word-embedding matrix when tied, plus the vocabulary bias.
type LMHead struct {
	Dense     Linear
	LayerNorm LayerNorm
	Decoder   Linear // Weight (V, H), shared with the word embeddings when tied
	act       gpu.Act
}

// Forward returns the logits (..., V) of hidden states (..., H).
func (m *LMHead) Forward(g *graph.Graph, h *graph.Tensor) *graph.Tensor {
	defer g.Scope("cls")()
	h = m.LayerNorm.Forward(g, m.Dense.Forward(g, h, m.act))
	return m.Decoder.Forward(g, h, gpu.ActNone)
}

// TextLMHeadModel is BlipTextLMHeadModel ("text_decoder."): the text model
// ("bert.", with cross-attention) and the LM head ("cls.").
type TextLMHeadModel struct {
	Bert *TextModel
	Head *LMHead
}

func (l *loader) textLMHeadModel(pre string, cfg *BlipConfig) *TextLMHeadModel {
	t := &cfg.TextConfig
	act, err := hiddenAct(t.HiddenAct)
	if err != nil && l.err == nil {
		l.err = err
	}
	bert := l.textModel(pre+"bert.", t)
	h := pre + "cls.predictions."
	head := &LMHead{
		Dense:     l.linear(h+"transform.dense", t.HiddenSize, t.HiddenSize),
		LayerNorm: l.layerNorm(h+"transform.LayerNorm", t.HiddenSize, t.LayerNormEps),
		act:       act,
	}
	name := pre + "cls.predictions.decoder.weight"
	if t.TieWordEmbeddings && l.err == nil {
		// transformers ties by the text config's flag: the decoder reads the
		// embedding matrix whatever the file stores under its own key (a
		// .bin holds a copy sharing the storage), and gradients of both
		// uses sum into one parameter.
		head.Decoder.Weight = bert.Embeddings.Word
		if err := l.ps.Alias(name, bert.Embeddings.Word); err != nil {
			l.err = err
		}
		l.ck.Ignore(name)
	} else {
		head.Decoder.Weight = l.param(name, []int{t.VocabSize, t.HiddenSize}, nil)
	}
	head.Decoder.Bias = l.param(h+"bias", []int{t.VocabSize}, nil)
	return &TextLMHeadModel{Bert: bert, Head: head}
}

// Forward returns the logits (B, T, V) of the decoder teacher-forced on ids.
func (m *TextLMHeadModel) Forward(g *graph.Graph, ids *graph.Tensor, in TextInput) *graph.Tensor {
	defer g.Scope("text_decoder")()
	return m.Head.Forward(g, m.Bert.Forward(g, ids, in))
}
