package blip

import (
	"fmt"

	"blip/blip/generate"
	"blip/gpu"
	"blip/graph"
)

// EncoderStates are encoder outputs a decoder cross-attends to: Items rows
// of Tokens states of Width floats, row-major, with an optional keep-mask
// (Items, Tokens) of ones and zeros (nil: attend to every state).
type EncoderStates struct {
	States               []float32
	Items, Tokens, Width int
	Mask                 []float32
}

// check verifies the sizes agree.
func (e *EncoderStates) check() error {
	if e.Items < 1 || e.Tokens < 1 || e.Width < 1 || len(e.States) != e.Items*e.Tokens*e.Width {
		return fmt.Errorf("blip: %d encoder states are not %d items of %d x %d", len(e.States), e.Items, e.Tokens, e.Width)
	}
	if e.Mask != nil && len(e.Mask) != e.Items*e.Tokens {
		return fmt.Errorf("blip: encoder mask has %d values for %d items of %d tokens", len(e.Mask), e.Items, e.Tokens)
	}
	return nil
}

// item returns the states (and mask) of item i.
func (e *EncoderStates) item(i int) ([]float32, []float32) {
	per := e.Tokens * e.Width
	s := e.States[i*per : (i+1)*per]
	if e.Mask == nil {
		return s, nil
	}
	return s, e.Mask[i*e.Tokens : (i+1)*e.Tokens]
}

// QuestionStates runs BlipForQuestionAnswering's encoders: the vision model
// on batch preprocessed images, then text_encoder over the questions
// (ids (batch, t) as the processor gives them, [CLS] question [SEP], padded,
// with the f32 keep-mask) cross-attending to its image. It returns the
// question states (batch, t, H). transformers feeds the ids unchanged
// (salesforce/BLIP put [ENC] first; HF checkpoints were converted to match
// the processor's [CLS]).
func (m *Model) QuestionStates(be gpu.Backend, pixels []float32, batch int, ids []int32, mask []float32, t int) (*EncoderStates, error) {
	if err := m.needQA(); err != nil {
		return nil, err
	}
	if len(ids) != batch*t || len(mask) != batch*t {
		return nil, fmt.Errorf("blip: %d question ids and %d mask values are not %d rows of %d", len(ids), len(mask), batch, t)
	}
	g := graph.New()
	defer g.Scope("vqa")()
	pin, patches, err := m.patchesInput(g, pixels, batch)
	if err != nil {
		return nil, err
	}
	iin := g.Input("question_ids", gpu.I32, batch, t)
	min := g.Input("question_mask", gpu.F32, batch, t)
	img := m.Vision.Forward(g, pin)
	q := m.TextEncoder.Forward(g, iin, TextInput{Mask: min, Image: img})
	out, err := runOnce(g, be, []*graph.Tensor{q}, func(p *graph.Plan) error {
		return firstErr(p.WriteF32(pin, patches), p.WriteI32(iin, ids), p.WriteF32(min, mask))
	})
	if err != nil {
		return nil, err
	}
	return &EncoderStates{States: out[0], Items: batch, Tokens: t, Width: m.Config.TextConfig.HiddenSize}, nil
}

// QAConfig is generate's configuration for answers: BlipForQuestionAnswering
// starts the decoder from decoder_start_token_id (the text config's bos,
// [DEC]), ends at sep ([SEP]) and pads with pad; greedy, max_length 20.
func (m *Model) QAConfig() generate.Config {
	t := &m.Config.TextConfig
	return generate.BLIPConfig(int32(t.BosTokenID), int32(t.SepTokenID), int32(t.PadTokenID))
}

// AnswerQuestions answers one question per image as transformers'
// BlipForQuestionAnswering.generate does: questions[i] (tokenised
// [CLS] question [SEP]) is encoded with image i, then text_decoder generates
// from [DEC] cross-attending to the question states. Like transformers, the
// decoder attends to every question state, padding included (generate
// passes an all-ones question mask): questions of different lengths in one
// batch can therefore answer differently than alone. cfg should start from
// QAConfig. The sequences start with [DEC].
func (m *Model) AnswerQuestions(be gpu.Backend, pixels []float32, batch int, questions [][]int32, cfg generate.Config) (*generate.Output, error) {
	if len(questions) != batch {
		return nil, fmt.Errorf("blip: %d questions for %d images", len(questions), batch)
	}
	t := &m.Config.TextConfig
	ids, mask, n, err := PadRows(questions, int32(t.PadTokenID), t.MaxPositionEmbeddings)
	if err != nil {
		return nil, err
	}
	q, err := m.QuestionStates(be, pixels, batch, ids, mask, n)
	if err != nil {
		return nil, err
	}
	return m.GenerateFrom(be, q, cfg)
}

// GenerateFrom runs text_decoder's generate against any encoder states
// (one prompt [bos] per item): the decoding half of AnswerQuestions.
func (m *Model) GenerateFrom(be gpu.Backend, enc *EncoderStates, cfg generate.Config) (*generate.Output, error) {
	if err := m.need("captioning", m.TextDecoder != nil && m.Config.TextConfig.IsDecoder); err != nil {
		return nil, err
	}
	if err := enc.check(); err != nil {
		return nil, err
	}
	if enc.Width != m.Config.TextConfig.EncoderHiddenSize {
		return nil, fmt.Errorf("blip: encoder states of width %d, the decoder cross-attends to width %d", enc.Width, m.Config.TextConfig.EncoderHiddenSize)
	}
	prompts, err := generate.BLIPPrompts(nil, enc.Items, cfg.BosTokenID)
	if err != nil {
		return nil, err
	}
	s := newCrossStepper(m, be, enc)
	defer s.close()
	return generate.Generate(s, prompts, cfg)
}

// DecoderLogits runs text_decoder teacher-forced on ids (rows, t) with the
// keep-mask (nil: none) where row r cross-attends to item itemOf[r] of enc,
// and returns the logits (rows, t, V). The encoder states are uploaded once
// and gathered on the device.
func (m *Model) DecoderLogits(be gpu.Backend, enc *EncoderStates, itemOf []int, ids []int32, mask []float32, t int) ([]float32, error) {
	if err := m.need("captioning", m.TextDecoder != nil && m.Config.TextConfig.IsDecoder); err != nil {
		return nil, err
	}
	if err := enc.check(); err != nil {
		return nil, err
	}
	rows := len(itemOf)
	if t < 1 || len(ids) != rows*t || (mask != nil && len(mask) != rows*t) {
		return nil, fmt.Errorf("blip: %d ids are not %d rows of %d tokens", len(ids), rows, t)
	}
	g := graph.New()
	sin := g.Input("encoder_states", gpu.F32, enc.Items, enc.Tokens, enc.Width)
	iin := g.Input("input_ids", gpu.I32, rows, t)
	in := TextInput{Causal: true, Image: GatherRows(g, sin, itemOf)}
	var min, ein *graph.Tensor
	if mask != nil {
		min = g.Input("attention_mask", gpu.F32, rows, t)
		in.Mask = min
	}
	if enc.Mask != nil {
		ein = g.Input("encoder_mask", gpu.F32, enc.Items, enc.Tokens)
		in.ImageMask = GatherRows(g, ein, itemOf)
	}
	logits := m.TextDecoder.Forward(g, iin, in)
	out, err := runOnce(g, be, []*graph.Tensor{logits}, func(p *graph.Plan) error {
		errs := []error{p.WriteF32(sin, enc.States), p.WriteI32(iin, ids)}
		if min != nil {
			errs = append(errs, p.WriteF32(min, mask))
		}
		if ein != nil {
			errs = append(errs, p.WriteF32(ein, enc.Mask))
		}
		return firstErr(errs...)
	})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// needQA refuses models without BlipForQuestionAnswering's modules.
func (m *Model) needQA() error {
	if m.Vision == nil || m.TextEncoder == nil || m.TextDecoder == nil || !m.Config.TextConfig.IsDecoder {
		return fmt.Errorf("%w: VQA needs a model with vision_model, text_encoder (with cross-attention) and text_decoder, this is a %v", errNoModule, m.Kind)
	}
	return nil
}
