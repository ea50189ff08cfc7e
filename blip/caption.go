package blip

import (
	"blip/blip/generate"
	"blip/gpu"
	"blip/graph"
)

// ImageStates runs the vision encoder on a batch of preprocessed images
// (batch*3*S*S CHW floats, as data/preprocess gives them) and returns the
// last hidden states, (batch, N+1, C) row-major. The compiled plan of the
// last batch size is kept for the next call (captioning, serving and
// CapFilt call this once per batch).
func (m *Model) ImageStates(be gpu.Backend, pixels []float32, batch int) ([]float32, error) {
	vp, err := m.recordVision(be, pixels, batch)
	if err != nil {
		return nil, err
	}
	v := &m.Config.VisionConfig
	states := make([]float32, batch*v.NumPositions()*v.HiddenSize)
	if err := vp.plan.ReadF32(vp.out, states); err != nil {
		return nil, err
	}
	return states, nil
}

// recordVision records the vision encoder over batch preprocessed images
// without waiting for it and returns the plan's slot, whose output will
// hold their states (batch, N+1, C): work recorded after it on be may read
// them on the device, and a Read waits for them (gpu.Backend's order).
func (m *Model) recordVision(be gpu.Backend, pixels []float32, batch int) (*planSlot, error) {
	patches, err := Patchify(pixels, batch, &m.Config.VisionConfig)
	if err != nil {
		return nil, err
	}
	vp, err := m.vision.get(be, batch, func() (*graph.Plan, *graph.Tensor, *graph.Tensor, error) {
		return m.VisionPlan(be, batch)
	})
	if err != nil {
		return nil, err
	}
	if err := vp.plan.WriteF32(vp.in, patches); err != nil {
		return nil, err
	}
	if err := vp.plan.Record(); err != nil {
		return nil, err
	}
	return vp, nil
}

// VisionPlan compiles the vision encoder for batch images: the plan, its
// patches input (Patchify's layout) and its last hidden states output.
func (m *Model) VisionPlan(be gpu.Backend, batch int) (plan *graph.Plan, patches, states *graph.Tensor, err error) {
	v := &m.Config.VisionConfig
	g := graph.New()
	in := g.Input("patches", gpu.F32, batch, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	out, err := m.VisionForward(g, in)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := g.Compile(be, encoderConfig(out))
	return p, in, out, err
}

// planSlot keeps the compiled plan of one batch size (the last asked
// for) with its input and output: captioning, serving and CapFilt run the
// same shapes batch after batch.
type planSlot struct {
	be      gpu.Backend
	n       int
	plan    *graph.Plan
	in, out *graph.Tensor
}

// get returns the slot's plan for (be, n), compiling it with build when
// the slot holds another or none.
func (s *planSlot) get(be gpu.Backend, n int, build func() (*graph.Plan, *graph.Tensor, *graph.Tensor, error)) (*planSlot, error) {
	if s.plan != nil && s.be == be && s.n == n {
		return s, nil
	}
	s.close()
	p, in, out, err := build()
	if err != nil {
		return nil, err
	}
	*s = planSlot{be: be, n: n, plan: p, in: in, out: out}
	return s, nil
}

func (s *planSlot) close() {
	if s.plan != nil {
		s.plan.Close()
	}
	*s = planSlot{}
}

// imageEncoderStates wraps image states (items, N+1, C) as the encoder
// states a decoder cross-attends to; crossStepper over them is the
// full-prefix reference the KV-cached captioning stepper is tested against.
func (m *Model) imageEncoderStates(images []float32, items int) *EncoderStates {
	v := &m.Config.VisionConfig
	return &EncoderStates{States: images, Items: items, Tokens: v.NumPositions(), Width: v.HiddenSize}
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
	ps, err := generate.BLIPPrompts(prompts, batch, cfg.BosTokenID)
	if err != nil {
		return nil, err
	}
	// The image states go from the vision plan to the cross-attention keys
	// and values on the device.
	vp, err := m.recordVision(be, pixels, batch)
	if err != nil {
		return nil, err
	}
	images, err := vp.plan.View(vp.out)
	if err != nil {
		return nil, err
	}
	capHint := cfg.MaxLength
	if cfg.MaxNewTokens > 0 {
		capHint = len(ps[0]) + cfg.MaxNewTokens
	}
	s, err := newKVStepperOn(m, be, images, batch, capHint)
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
