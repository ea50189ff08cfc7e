package blip

import "fmt"

// TensorSpec is one parameter a model class has: its HF name and the shape
// the config implies.
type TensorSpec struct {
	Name  string
	Shape []int
}

// Names of the tied LM-head weight and the embedding it shares storage with.
// save_pretrained drops the first from model.safetensors.
const (
	DecoderWeightName  = "text_decoder.cls.predictions.decoder.weight"
	DecoderEmbedName   = "text_decoder.bert.embeddings.word_embeddings.weight"
	decoderBiasName    = "text_decoder.cls.predictions.bias"
	decoderBiasTieName = "text_decoder.cls.predictions.decoder.bias"
)

// ExpectedTensors lists every parameter of the given model class under cfg,
// with its shape, in the order of the module tree. This is the set of names
// transformers loads; a folder lacking one of them, or holding it with
// another shape, does not match its config. (Buffers such as position_ids
// are not parameters and are not listed.)
func ExpectedTensors(cfg *BlipConfig, kind ModelKind) ([]TensorSpec, error) {
	var s specList
	switch kind {
	case KindCaptioning:
		s.vision(cfg)
		s.lmHead("text_decoder.", cfg)
	case KindRetrieval:
		s.vision(cfg)
		s.text("text_encoder.", cfg, false)
		d, vh, th := cfg.ImageTextHiddenSize, cfg.VisionConfig.HiddenSize, cfg.TextConfig.HiddenSize
		s.linear("vision_proj", d, vh, true)
		s.linear("text_proj", d, th, true)
		s.linear("itm_head", 2, th, true)
	case KindQA:
		s.vision(cfg)
		s.text("text_encoder.", cfg, false)
		s.lmHead("text_decoder.", cfg)
	case KindContrastive:
		s.text("text_model.", cfg, true)
		s.vision(cfg)
		p := cfg.ProjectionDim
		s.linear("visual_projection", p, cfg.VisionConfig.HiddenSize, false)
		s.linear("text_projection", p, cfg.TextConfig.HiddenSize, false)
		s.add("logit_scale")
	default:
		return nil, fmt.Errorf("no parameter list for model kind %v", kind)
	}
	return s, nil
}

// specList accumulates specs.
type specList []TensorSpec

func (s *specList) add(name string, shape ...int) {
	*s = append(*s, TensorSpec{Name: name, Shape: shape})
}

// linear adds an nn.Linear(in, out): weight [out, in] and bias [out].
func (s *specList) linear(prefix string, out, in int, bias bool) {
	s.add(prefix+".weight", out, in)
	if bias {
		s.add(prefix+".bias", out)
	}
}

// norm adds a LayerNorm of width n.
func (s *specList) norm(prefix string, n int) {
	s.add(prefix+".weight", n)
	s.add(prefix+".bias", n)
}

// vision adds BlipVisionModel under "vision_model.".
func (s *specList) vision(cfg *BlipConfig) {
	v := &cfg.VisionConfig
	c, p := v.HiddenSize, v.PatchSize
	const pre = "vision_model."
	s.add(pre+"embeddings.class_embedding", 1, 1, c)
	s.add(pre+"embeddings.patch_embedding.weight", c, v.NumChannels, p, p)
	s.add(pre+"embeddings.patch_embedding.bias", c)
	s.add(pre+"embeddings.position_embedding", 1, v.NumPositions(), c)
	for i := range v.NumHiddenLayers {
		l := fmt.Sprintf("%sencoder.layers.%d.", pre, i)
		s.norm(l+"layer_norm1", c)
		s.linear(l+"self_attn.qkv", 3*c, c, true)
		s.linear(l+"self_attn.projection", c, c, true)
		s.norm(l+"layer_norm2", c)
		s.linear(l+"mlp.fc1", v.IntermediateSize, c, true)
		s.linear(l+"mlp.fc2", c, v.IntermediateSize, true)
	}
	s.norm(pre+"post_layernorm", c)
}

// text adds BlipTextModel under pre; cross-attention exists when the config
// says is_decoder (as in every released checkpoint).
func (s *specList) text(pre string, cfg *BlipConfig, pooler bool) {
	t := &cfg.TextConfig
	h, e := t.HiddenSize, t.EncoderHiddenSize
	s.add(pre+"embeddings.word_embeddings.weight", t.VocabSize, h)
	s.add(pre+"embeddings.position_embeddings.weight", t.MaxPositionEmbeddings, h)
	s.norm(pre+"embeddings.LayerNorm", h)
	for i := range t.NumHiddenLayers {
		l := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		s.linear(l+"attention.self.query", h, h, true)
		s.linear(l+"attention.self.key", h, h, true)
		s.linear(l+"attention.self.value", h, h, true)
		s.linear(l+"attention.output.dense", h, h, true)
		s.norm(l+"attention.output.LayerNorm", h)
		if t.IsDecoder {
			s.linear(l+"crossattention.self.query", h, h, true)
			s.linear(l+"crossattention.self.key", h, e, true)
			s.linear(l+"crossattention.self.value", h, e, true)
			s.linear(l+"crossattention.output.dense", h, h, true)
			s.norm(l+"crossattention.output.LayerNorm", h)
		}
		s.linear(l+"intermediate.dense", t.IntermediateSize, h, true)
		s.linear(l+"output.dense", h, t.IntermediateSize, true)
		s.norm(l+"output.LayerNorm", h)
	}
	if pooler {
		s.linear(pre+"pooler.dense", h, h, true)
	}
}

// lmHead adds BlipTextLMHeadModel under pre: a text model without pooler
// ("bert.") and the prediction head ("cls.").
func (s *specList) lmHead(pre string, cfg *BlipConfig) {
	t := &cfg.TextConfig
	s.text(pre+"bert.", cfg, false)
	s.linear(pre+"cls.predictions.transform.dense", t.HiddenSize, t.HiddenSize, true)
	s.norm(pre+"cls.predictions.transform.LayerNorm", t.HiddenSize)
	s.add(pre+"cls.predictions.decoder.weight", t.VocabSize, t.HiddenSize)
	s.add(pre+"cls.predictions.bias", t.VocabSize)
}
