package blip

import (
	"fmt"

	"blip/blip/generate"
	"blip/gpu"
	"blip/graph"
)

// ImageStates runs the vision encoder on a batch of preprocessed images
// (batch*3*S*S CHW floats, as data/preprocess gives them) and returns the
// last hidden states, (batch, N+1, C) row-major.
func (m *Model) ImageStates(be gpu.Backend, pixels []float32, batch int) ([]float32, error) {
	v := &m.Config.VisionConfig
	patches, err := Patchify(pixels, batch, v)
	if err != nil {
		return nil, err
	}
	g := graph.New()
	in := g.Input("patches", gpu.F32, batch, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	out, err := m.VisionForward(g, in)
	if err != nil {
		return nil, err
	}
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{out}, DropoutOff: true})
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	states := make([]float32, batch*v.NumPositions()*v.HiddenSize)
	for _, err := range []error{plan.WriteF32(in, patches), plan.Run(), plan.ReadF32(out, states)} {
		if err != nil {
			return nil, err
		}
	}
	return states, nil
}

// decoderStepper is the reference captioning decoder behind
// generate.Stepper, without a cache: each step runs the decoder over the
// whole prefix of every row against that row's image states, uploaded
// again every step; plans are cached per (rows, length). GenerateCaptions
// uses kvStepper; the tests check kvStepper's logits against this one.
type decoderStepper struct {
	m      *Model
	be     gpu.Backend
	images []float32 // (items, N+1, C)
	per    int       // floats per item
	seqs   [][]int32 // per row: the tokens so far
	item   []int     // per row: which image
	plans  map[[2]int]*stepPlan
}

type stepPlan struct {
	plan              *graph.Plan
	img, ids, mask, o *graph.Tensor
}

func newDecoderStepper(m *Model, be gpu.Backend, images []float32, items int) *decoderStepper {
	return &decoderStepper{m: m, be: be, images: images, per: len(images) / items, plans: map[[2]int]*stepPlan{}}
}

func (s *decoderStepper) close() {
	for _, p := range s.plans {
		p.plan.Close()
	}
}

func (s *decoderStepper) planFor(rows, t int) (*stepPlan, error) {
	if p, ok := s.plans[[2]int{rows, t}]; ok {
		return p, nil
	}
	v := &s.m.Config.VisionConfig
	g := graph.New()
	p := &stepPlan{
		img:  g.Input("image_states", gpu.F32, rows, v.NumPositions(), v.HiddenSize),
		ids:  g.Input("input_ids", gpu.I32, rows, t),
		mask: g.Input("attention_mask", gpu.F32, rows, t),
	}
	logits, err := s.m.CaptionLogits(g, p.img, p.ids, p.mask)
	if err != nil {
		return nil, err
	}
	p.o = logits
	if p.plan, err = g.Compile(s.be, graph.Config{Outputs: []*graph.Tensor{logits}, DropoutOff: true}); err != nil {
		return nil, err
	}
	s.plans[[2]int{rows, t}] = p
	return p, nil
}

// Start implements generate.Stepper.
func (s *decoderStepper) Start(prompts [][]int32, copies int) ([]float32, error) {
	s.seqs = make([][]int32, len(prompts))
	s.item = make([]int, len(prompts))
	for i, p := range prompts {
		s.seqs[i] = append([]int32(nil), p...)
		s.item[i] = i / copies
		if s.item[i]*s.per >= len(s.images) {
			return nil, fmt.Errorf("blip: row %d conditions on image %d of %d", i, s.item[i], len(s.images)/s.per)
		}
	}
	return s.logits()
}

// Step implements generate.Stepper.
func (s *decoderStepper) Step(tokens []int32) ([]float32, error) {
	if len(tokens) != len(s.seqs) {
		return nil, fmt.Errorf("blip: %d tokens for %d rows", len(tokens), len(s.seqs))
	}
	for i, t := range tokens {
		s.seqs[i] = append(s.seqs[i], t)
	}
	return s.logits()
}

// Reorder implements generate.Stepper.
func (s *decoderStepper) Reorder(src []int) error {
	seqs, item := make([][]int32, len(src)), make([]int, len(src))
	for i, r := range src {
		if r < 0 || r >= len(s.seqs) {
			return fmt.Errorf("blip: reorder row %d of %d", r, len(s.seqs))
		}
		seqs[i], item[i] = append([]int32(nil), s.seqs[r]...), s.item[r]
	}
	s.seqs, s.item = seqs, item
	return nil
}

// logits runs the decoder on every row's prefix and returns the logits of
// each row's last position, (rows, vocab).
func (s *decoderStepper) logits() ([]float32, error) {
	rows, t := len(s.seqs), len(s.seqs[0])
	p, err := s.planFor(rows, t)
	if err != nil {
		return nil, err
	}
	img := make([]float32, 0, rows*s.per)
	ids := make([]int32, 0, rows*t)
	mask := make([]float32, rows*t)
	for i, seq := range s.seqs {
		img = append(img, s.images[s.item[i]*s.per:(s.item[i]+1)*s.per]...)
		ids = append(ids, seq...)
	}
	for i := range mask {
		mask[i] = 1
	}
	vocab := s.m.Config.TextConfig.VocabSize
	all := make([]float32, rows*t*vocab)
	for _, err := range []error{p.plan.WriteF32(p.img, img), p.plan.WriteI32(p.ids, ids), p.plan.WriteF32(p.mask, mask), p.plan.Run(), p.plan.ReadF32(p.o, all)} {
		if err != nil {
			return nil, err
		}
	}
	out := make([]float32, rows*vocab)
	for i := 0; i < rows; i++ {
		copy(out[i*vocab:(i+1)*vocab], all[(i*t+t-1)*vocab:(i*t+t)*vocab])
	}
	return out, nil
}

// GenerateCaptions decodes captions for a batch of preprocessed images as
// transformers' BlipForConditionalGeneration.generate does: prompts (nil, or
// one tokenised "[CLS] words [SEP]" per image) get [DEC] first and lose
// their last id; cfg's bos/eos/pad should come from the model
// (CaptionConfig). The sequences start with [DEC].
func (m *Model) GenerateCaptions(be gpu.Backend, pixels []float32, batch int, prompts [][]int32, cfg generate.Config) (*generate.Output, error) {
	if err := m.need("captioning", m.TextDecoder != nil && m.Vision != nil); err != nil {
		return nil, err
	}
	images, err := m.ImageStates(be, pixels, batch)
	if err != nil {
		return nil, err
	}
	ps, err := generate.BLIPPrompts(prompts, batch, cfg.BosTokenID)
	if err != nil {
		return nil, err
	}
	capHint := cfg.MaxLength
	if cfg.MaxNewTokens > 0 {
		capHint = len(ps[0]) + cfg.MaxNewTokens
	}
	s, err := newKVStepper(m, be, images, batch, capHint)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return generate.Generate(s, ps, cfg)
}

// CaptionConfig is generate's BLIP configuration with this model's special
// tokens: [DEC] as bos, [SEP] as eos, and the pad id.
func (m *Model) CaptionConfig() generate.Config {
	t := &m.Config.TextConfig
	return generate.BLIPConfig(int32(t.BosTokenID), int32(t.SepTokenID), int32(t.PadTokenID))
}
