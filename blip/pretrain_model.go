package blip

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"blip/gpu"
	"blip/graph"
)

// Pretrain is BLIP's pretraining model (BLIP_Pretrain of the reference
// blip_pretrain.py): the ViT, a text encoder whose layers carry
// cross-attention (used without it for ITC, with it for ITM), and a text
// decoder that shares every weight with the encoder except self-attention
// (embeddings, cross-attention and FFN are the same parameters; the LM head
// is its own), the 256-d ITC projections, the ITM head and the learnable
// temperature. Momentum holds the exponential moving averages of the ViT,
// the text encoder (the parts text-only encoding reads) and both
// projections.
//
// Parameters carry the HF names of the model each part exports to
// ("vision_model.", "text_encoder.", "text_decoder.bert.", ...); the
// decoder's shared weights are aliases of the encoder's, so that they are
// one parameter whose gradient sums both uses.
type Pretrain struct {
	Config *BlipConfig
	Params *graph.Params
	// Momentum holds the EMA copies, named as the originals plus the
	// suffix "_m" on the first component ("vision_model_m.embeddings...").
	Momentum *graph.Params

	Vision                 *VisionModel
	TextEncoder            *TextModel
	TextDecoder            *TextLMHeadModel
	VisionProj, TextProj   Linear
	ITMHead                Linear
	Temp                   *graph.Param // (1): the ITC temperature
	VisionM                *VisionModel
	TextEncoderM           *TextModel
	VisionProjM, TextProjM Linear

	// pairs lists (parameter, momentum copy) in declaration order.
	pairs [][2]*graph.Param
	// stored maps names to checkpoint shapes where they differ from the
	// graph's.
	stored map[string][]int
}

// StoredShape is the shape p is saved with: the HF shape (the patch
// convolution's [C, 3, P, P], say), which may differ from p.Shape().
func (m *Pretrain) StoredShape(p *graph.Param) []int {
	if s, ok := m.stored[p.Name()]; ok {
		return s
	}
	return p.Shape()
}

// TempInit is BLIP's initial ITC temperature.
const TempInit = 0.07

// momentumName maps a parameter name to its momentum copy's.
func momentumName(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i] + "_m" + name[i:]
	}
	return name + "_m"
}

// NewPretrain declares the pretraining model of cfg, reads every value
// from src (RandomInit, a resumed checkpoint, an HF folder) and uploads the
// parameters and their momentum copies to be.
func NewPretrain(cfg *BlipConfig, src weightSource, be gpu.Backend) (*Pretrain, error) {
	return loadPretrain(cfg, src, be, true)
}

// loadPretrain declares the model (with the decoder or without it), reads
// its values from src and uploads them and their momentum copies to be.
func loadPretrain(cfg *BlipConfig, src weightSource, be gpu.Backend, decoder bool) (*Pretrain, error) {
	m, l, ml, err := newPretrain(cfg, src, decoder)
	if err != nil {
		return nil, err
	}
	if err := l.write(be); err != nil {
		return nil, err
	}
	if err := ml.write(be); err != nil {
		m.Params.Free()
		return nil, err
	}
	return m, nil
}

// WeightSource is where NewPretrain reads values: a *Checkpoint, RandomInit
// or a composition of them.
type WeightSource = weightSource

// originalName inverts momentumName.
func originalName(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 {
		i = len(name)
	}
	return strings.TrimSuffix(name[:i], "_m") + name[i:]
}

func newPretrain(cfg *BlipConfig, src weightSource, decoder bool) (*Pretrain, *loader, *loader, error) {
	if !cfg.TextConfig.IsDecoder {
		// The encoder always has cross-attention (ITM), which this code
		// base keys on is_decoder as transformers does.
		return nil, nil, nil, fmt.Errorf("blip: pretraining and retrieval training need text_config.is_decoder true (the ITM cross-attention layers)")
	}
	if cfg.VisionConfig.HiddenSize != cfg.TextConfig.EncoderHiddenSize {
		return nil, nil, nil, fmt.Errorf("blip: text_config.encoder_hidden_size %d must equal vision_config.hidden_size %d",
			cfg.TextConfig.EncoderHiddenSize, cfg.VisionConfig.HiddenSize)
	}
	l := newLoader(src)
	m := &Pretrain{Config: cfg, Params: l.ps}
	t := &cfg.TextConfig
	d, vh, th := cfg.ImageTextHiddenSize, cfg.VisionConfig.HiddenSize, t.HiddenSize

	// Declaration order puts every momentum-tracked parameter first.
	m.Vision = l.visionModel("vision_model.", &cfg.VisionConfig)
	m.TextEncoder = l.textModel("text_encoder.", t)
	m.VisionProj = l.linear("vision_proj", d, vh)
	m.TextProj = l.linear("text_proj", d, th)
	tracked := map[*graph.Param]bool{}
	for _, p := range l.ps.List() {
		tracked[p] = true
	}
	m.ITMHead = l.linear("itm_head", 2, th)
	m.Temp = l.param("temp", []int{1}, nil)
	if decoder {
		m.TextDecoder = l.sharedDecoder("text_decoder.", cfg, m.TextEncoder)
	}
	if l.err != nil {
		return nil, nil, nil, l.err
	}

	// The momentum encoder only ever encodes text alone: it needs no
	// cross-attention weights (BLIP keeps and averages them unused).
	tm := *t
	tm.IsDecoder = false
	ml := newLoader(momentumSource{src})
	m.Momentum = ml.ps
	m.VisionM = ml.visionModel("vision_model_m.", &cfg.VisionConfig)
	m.TextEncoderM = ml.textModel("text_encoder_m.", &tm)
	m.VisionProjM = ml.linear("vision_proj_m", d, vh)
	m.TextProjM = ml.linear("text_proj_m", d, th)
	if ml.err != nil {
		return nil, nil, nil, ml.err
	}
	m.stored = l.stored
	for n, s := range ml.stored {
		m.stored[n] = s
	}
	for _, p := range ml.ps.List() {
		p.Frozen = true
		orig := originalName(p.Name())
		q := l.ps.Get(orig)
		if !tracked[q] {
			return nil, nil, nil, fmt.Errorf("blip: momentum parameter %q has no original %q", p.Name(), orig)
		}
		m.pairs = append(m.pairs, [2]*graph.Param{q, p})
	}
	return m, l, ml, nil
}

// sharedDecoder declares the pretraining decoder: self-attention of its
// own, everything else (embeddings, cross-attention, FFN) aliased to enc's
// parameters, and an untied LM head. BLIP ties the decoder's word
// embeddings to the encoder's after BERT has tied its LM head to the
// decoder's own copy, so the head keeps a separate matrix.
func (l *loader) sharedDecoder(pre string, cfg *BlipConfig, enc *TextModel) *TextLMHeadModel {
	t := &cfg.TextConfig
	if l.err != nil {
		return nil
	}
	b := pre + "bert."
	alias := func(name string, p *graph.Param) {
		if l.err == nil && p != nil {
			l.err = l.ps.Alias(name, p)
		}
	}
	aliasLinear := func(name string, m Linear) {
		alias(name+".weight", m.Weight)
		alias(name+".bias", m.Bias)
	}
	aliasNorm := func(name string, m LayerNorm) {
		alias(name+".weight", m.Weight)
		alias(name+".bias", m.Bias)
	}
	e := enc.Embeddings
	alias(b+"embeddings.word_embeddings.weight", e.Word)
	alias(b+"embeddings.position_embeddings.weight", e.Position)
	aliasNorm(b+"embeddings.LayerNorm", e.LayerNorm)
	dec := &TextModel{Config: t, Embeddings: e}
	for i, el := range enc.Layers {
		p := fmt.Sprintf("%sencoder.layer.%d.", b, i)
		layer := &TextLayer{
			Attention:      *l.textAttention(p+"attention.", t.HiddenSize, t.HiddenSize, t.NumAttentionHeads, t.LayerNormEps),
			CrossAttention: el.CrossAttention,
			Intermediate:   el.Intermediate,
			Output:         el.Output,
			OutputNorm:     el.OutputNorm,
			act:            el.act,
		}
		ca := el.CrossAttention
		for _, s := range []struct {
			n string
			m Linear
		}{{"self.query", ca.Query}, {"self.key", ca.Key}, {"self.value", ca.Value}, {"output.dense", ca.Dense}} {
			aliasLinear(p+"crossattention."+s.n, s.m)
		}
		aliasNorm(p+"crossattention.output.LayerNorm", ca.LayerNorm)
		aliasLinear(p+"intermediate.dense", el.Intermediate)
		aliasLinear(p+"output.dense", el.Output)
		aliasNorm(p+"output.LayerNorm", el.OutputNorm)
		dec.Layers = append(dec.Layers, layer)
	}
	h := pre + "cls.predictions."
	act, _ := hiddenAct(t.HiddenAct)
	head := &LMHead{
		Dense:     l.linear(h+"transform.dense", t.HiddenSize, t.HiddenSize),
		LayerNorm: l.layerNorm(h+"transform.LayerNorm", t.HiddenSize, t.LayerNormEps),
		Decoder: Linear{
			Weight: l.param(h+"decoder.weight", []int{t.VocabSize, t.HiddenSize}, nil),
			Bias:   l.param(h+"bias", []int{t.VocabSize}, nil),
		},
		act: act,
	}
	return &TextLMHeadModel{Bert: dec, Head: head}
}

// SetDropout sets the text transformers' hidden dropout (BERT's
// hidden_dropout_prob during pretraining; the ViT has none in BLIP).
func (m *Pretrain) SetDropout(p float32) {
	m.TextEncoder.SetDropout(p)
	if m.TextDecoder != nil {
		m.TextDecoder.Bert.SetDropout(p)
	}
	m.TextEncoderM.SetDropout(p)
}

// Close frees both parameter sets.
func (m *Pretrain) Close() {
	m.Params.Free()
	m.Momentum.Free()
}

// momentumSource reads a momentum copy's value: the stored copy when the
// source has one (a resumed run), else the original's (BLIP's
// copy_params at the start of pretraining).
type momentumSource struct{ src weightSource }

type hasser interface{ Has(name string) bool }

func (s momentumSource) Require(name string, shape ...int) ([]float32, error) {
	if h, ok := s.src.(hasser); ok && h.Has(name) {
		return s.src.Require(name, shape...)
	}
	return s.src.Require(originalName(name), shape...)
}

func (s momentumSource) Ignore(names ...string) { s.src.Ignore(names...) }

// RandomInit is the fresh initialisation of a model trained from scratch:
// BERT's and timm's ViT's, N(0, std) for matrices and embeddings
// (truncated at 2 std, as trunc_normal_), ones and zeros for LayerNorm
// scales and biases, zero biases, and TempInit for the temperature. Each
// tensor's values depend only on the seed and its name, so adding a module
// does not change the others.
type RandomInit struct {
	Seed uint64
	Std  float64 // 0.02 in BERT and BLIP's ViT
	// VisionPositionStd, when > 0, is the spread of the ViT's position
	// embeddings instead of Std. A ViT trained from scratch for minutes
	// learns where things are only when its position embeddings start
	// comparable to the patch embeddings (whose outputs have a spread of
	// about Std*sqrt(3*P*P)); at Std they are ~30x smaller and the
	// position of an object is lost in the first LayerNorm.
	VisionPositionStd float64
}

// Require implements weightSource.
func (r RandomInit) Require(name string, shape ...int) ([]float32, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	out := make([]float32, n)
	switch {
	case name == "temp":
		for i := range out {
			out[i] = TempInit
		}
	case strings.HasSuffix(name, ".bias") || strings.HasSuffix(name, "_bias"):
	case isNormWeight(name):
		for i := range out {
			out[i] = 1
		}
	default:
		h := fnv.New64a()
		h.Write([]byte(name))
		rng := rand.New(rand.NewPCG(r.Seed, h.Sum64()))
		std := r.Std
		if r.VisionPositionStd > 0 && strings.HasSuffix(name, "embeddings.position_embedding") && strings.HasPrefix(name, "vision_model") {
			std = r.VisionPositionStd
		}
		for i := range out {
			x := rng.NormFloat64()
			for math.Abs(x) > 2 {
				x = rng.NormFloat64()
			}
			out[i] = float32(x * std)
		}
	}
	return out, nil
}

// Ignore implements weightSource.
func (RandomInit) Ignore(...string) {}
