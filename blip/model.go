package blip

import (
	"errors"
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// Model is a BLIP model loaded from an HF folder: its modules, which build
// graph ops, and their parameters on a backend, named by their exact HF keys
// (the tied LM-head decoder weight is an alias of the word embeddings).
// Which modules exist depends on Kind.
type Model struct {
	Config *BlipConfig
	Kind   ModelKind
	Params *graph.Params

	Vision      *VisionModel     // every kind but contrastive has "vision_model."
	TextDecoder *TextLMHeadModel // captioning, QA: "text_decoder."
	TextEncoder *TextModel       // retrieval, QA: "text_encoder."
	// Retrieval heads: ITC projections of the [CLS] states and the ITM
	// classifier of the first text token.
	VisionProj, TextProj, ITMHead *Linear

	// decChains caches the KV-cached decoder's compiled plans by backend
	// and shape, so each caption call does not compile them again. A Model
	// decodes one generation at a time.
	decChains map[chainKey]*decChain
	// vision is ImageStates' plan, cross the projection of image states to
	// the decoder's cross-attention keys and values (caption_cache.go).
	vision, cross planSlot
}

type chainKey struct {
	be       gpu.Backend
	rows, tq int
}

// LoadDir opens an HF folder (OpenFolder) and loads it onto be.
func LoadDir(dir string, be gpu.Backend) (*Model, error) {
	f, err := OpenFolder(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Load(f, be)
}

// Load declares the modules of f's model class, reads every weight by its
// HF name (a shape that disagrees with the config is an error naming the
// key) and uploads them to be. The folder may be closed afterwards.
func Load(f *Folder, be gpu.Backend) (*Model, error) {
	cfg := f.Config
	l := newLoader(f.Weights)
	m := &Model{Config: cfg, Kind: f.Kind, Params: l.ps}
	switch f.Kind {
	case KindCaptioning:
		m.Vision = l.visionModel("vision_model.", &cfg.VisionConfig)
		m.TextDecoder = l.textLMHeadModel("text_decoder.", cfg)
	case KindRetrieval:
		m.Vision = l.visionModel("vision_model.", &cfg.VisionConfig)
		m.TextEncoder = l.textModel("text_encoder.", &cfg.TextConfig)
		d, vh, th := cfg.ImageTextHiddenSize, cfg.VisionConfig.HiddenSize, cfg.TextConfig.HiddenSize
		vp, tp, itm := l.linear("vision_proj", d, vh), l.linear("text_proj", d, th), l.linear("itm_head", 2, th)
		m.VisionProj, m.TextProj, m.ITMHead = &vp, &tp, &itm
	case KindQA:
		m.Vision = l.visionModel("vision_model.", &cfg.VisionConfig)
		m.TextEncoder = l.textModel("text_encoder.", &cfg.TextConfig)
		m.TextDecoder = l.textLMHeadModel("text_decoder.", cfg)
	default:
		return nil, fmt.Errorf("blip: %s: loading a %v is not supported", f.Dir, f.Kind)
	}
	if err := l.write(be); err != nil {
		return nil, fmt.Errorf("blip: %s: %w", f.Dir, err)
	}
	return m, nil
}

// Close frees the parameters' device memory.
func (m *Model) Close() {
	for _, c := range m.decChains {
		c.close()
	}
	m.decChains = nil
	m.vision.close()
	m.cross.close()
	m.Params.Free()
}

// errNoModule is returned by builders the model class lacks a module for.
var errNoModule = errors.New("blip: the model has no such module")

func (m *Model) need(what string, ok bool) error {
	if !ok {
		return fmt.Errorf("%w: %s needs a model with %s, this is a %v", errNoModule, what, map[string]string{
			"vision forward": "vision_model", "captioning": "text_decoder", "ITM": "text_encoder and itm_head",
			"ITC": "text_encoder, vision_proj and text_proj",
		}[what], m.Kind)
	}
	return nil
}

// VisionForward returns last_hidden_state (B, N+1, Cv) of patches (B, N, 3*P*P)
// (an f32 input written with Patchify's output).
func (m *Model) VisionForward(g *graph.Graph, patches *graph.Tensor) (*graph.Tensor, error) {
	if err := m.need("vision forward", m.Vision != nil); err != nil {
		return nil, err
	}
	return m.Vision.Forward(g, patches), nil
}

// CaptionLogits returns the decoder's logits (B, T, V) teacher-forced on
// ids (B, T) i32 (starting with [DEC]) with the f32 attention mask (B, T)
// (nil: no padding), cross-attending to image (B, N+1, Cv), as
// BlipForConditionalGeneration's forward.
func (m *Model) CaptionLogits(g *graph.Graph, image, ids, mask *graph.Tensor) (*graph.Tensor, error) {
	if err := m.need("captioning", m.TextDecoder != nil && m.Config.TextConfig.IsDecoder); err != nil {
		return nil, err
	}
	return m.TextDecoder.Forward(g, ids, TextInput{Mask: mask, Causal: true, Image: image}), nil
}

// CaptionLoss is the LM loss of logits (B, T, V): cross-entropy of the
// logits at positions 0..T-2 against labels (B, T-1) i32, the next tokens
// with padding set to graph.IgnoreIndex (see ShiftLabels), averaged over
// the counted targets, with the config's label smoothing (transformers 5
// reads the top-level label_smoothing; the original BLIP used 0.1).
func (m *Model) CaptionLoss(g *graph.Graph, logits, labels *graph.Tensor) *graph.Tensor {
	if !logits.Valid() || logits.Shape().Rank() != 3 || logits.Shape()[1] < 2 {
		return g.Slice(logits, 1, 0, 0) // records why
	}
	t := logits.Shape()[1]
	return g.CrossEntropy(g.Slice(logits, 1, 0, t-1), labels, float32(m.Config.LabelSmoothing))
}

// ShiftLabels makes the LM targets of ids (batch rows of t tokens): row b
// holds ids[b, 1:], with the pad id replaced by graph.IgnoreIndex, as HF
// does with labels = input_ids masked at padding.
func ShiftLabels(ids []int32, batch, t int, pad int) ([]int32, error) {
	if t < 2 || len(ids) != batch*t {
		return nil, fmt.Errorf("blip: %d ids are not %d rows of %d >= 2 tokens", len(ids), batch, t)
	}
	out := make([]int32, 0, batch*(t-1))
	for b := range batch {
		for _, id := range ids[b*t+1 : (b+1)*t] {
			if int(id) == pad {
				id = graph.IgnoreIndex
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// ITMLogits returns the image-text matching logits (B, 2) of image i
// (B, N+1, Cv) with text i: the text encoder over ids (B, T) (HF keeps
// [CLS] first) and mask, cross-attending to the image, then itm_head on
// the first token.
func (m *Model) ITMLogits(g *graph.Graph, image, ids, mask *graph.Tensor) (*graph.Tensor, error) {
	if err := m.need("ITM", m.TextEncoder != nil && m.ITMHead != nil && m.Config.TextConfig.IsDecoder); err != nil {
		return nil, err
	}
	defer g.Scope("itm")()
	h := m.TextEncoder.Forward(g, ids, TextInput{Mask: mask, Image: image})
	return m.ITMHead.Forward(g, FirstToken(g, h), gpu.ActNone), nil
}

// ITCFeatures returns the normalised contrastive features: vision_proj of
// the image [CLS] state (Bi, D) and text_proj of the text-only encoder's
// first state (Bt, D), each L2-normalised as F.normalize.
func (m *Model) ITCFeatures(g *graph.Graph, image, ids, mask *graph.Tensor) (img, txt *graph.Tensor, err error) {
	if err := m.need("ITC", m.TextEncoder != nil && m.VisionProj != nil && m.TextProj != nil); err != nil {
		return nil, nil, err
	}
	defer g.Scope("itc")()
	img = g.L2Normalize(m.VisionProj.Forward(g, FirstToken(g, image), gpu.ActNone), 0)
	h := m.TextEncoder.Forward(g, ids, TextInput{Mask: mask})
	txt = g.L2Normalize(m.TextProj.Forward(g, FirstToken(g, h), gpu.ActNone), 0)
	return img, txt, nil
}

// ITCSimilarity returns the cosine similarities (Bi, Bt) of every image with
// every text (rows are images), as BlipForImageTextRetrieval with
// use_itm_head=False.
func (m *Model) ITCSimilarity(g *graph.Graph, image, ids, mask *graph.Tensor) (*graph.Tensor, error) {
	img, txt, err := m.ITCFeatures(g, image, ids, mask)
	if err != nil {
		return nil, err
	}
	return g.MatMul(img, txt, false, true), nil
}

// GatherRows returns x[idx] along the first axis (len(idx), ...): pairing
// image states with several texts (ITM over all pairs, hard negatives)
// without recomputing them. Gradients flow back to x.
func GatherRows(g *graph.Graph, x *graph.Tensor, idx []int) *graph.Tensor {
	if !x.Valid() || x.Shape().Rank() < 1 || len(idx) == 0 {
		return g.Reshape(x, 0) // records why (or keeps the first error)
	}
	s := x.Shape()
	ids := make([]int32, len(idx))
	for i, v := range idx {
		if v < 0 || v >= s[0] {
			return g.Slice(x, 0, v, v+1) // records the bad index with x's shape
		}
		ids[i] = int32(v)
	}
	return GatherRowsBy(g, x, g.ConstI32(fmt.Sprintf("gather%v", idx), ids, len(ids)))
}
