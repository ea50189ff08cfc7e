package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// crossStepper is text_decoder behind generate.Stepper, cross-attending to
// any encoder states (VQA: the question states). Like the captioning
// stepper it has no key/value cache: each step runs the decoder over every
// row's whole prefix. The encoder states are uploaded once per plan and
// gathered to the rows on the device, so beams share them; plans are cached
// per (rows, length).
type crossStepper struct {
	m     *Model
	be    gpu.Backend
	enc   *EncoderStates
	seqs  [][]int32 // per row: the tokens so far
	item  []int     // per row: which encoder item
	plans map[[2]int]*crossPlan
}

type crossPlan struct {
	plan                              *graph.Plan
	states, emask, ids, rowItems, out *graph.Tensor
	loaded                            bool // the encoder states are on the device
}

func newCrossStepper(m *Model, be gpu.Backend, enc *EncoderStates) *crossStepper {
	return &crossStepper{m: m, be: be, enc: enc, plans: map[[2]int]*crossPlan{}}
}

func (s *crossStepper) close() {
	for _, p := range s.plans {
		p.plan.Close()
	}
}

// planFor builds the decoder over (rows, t) ids; the row -> item map is an
// i32 input so that reordering beams needs no new plan.
func (s *crossStepper) planFor(rows, t int) (*crossPlan, error) {
	if p, ok := s.plans[[2]int{rows, t}]; ok {
		return p, nil
	}
	e := s.enc
	g := graph.New()
	p := &crossPlan{}
	p.states = g.Input("encoder_states", gpu.F32, e.Items, e.Tokens*e.Width)
	p.rowItems = g.Input("row_items", gpu.I32, rows)
	p.ids = g.Input("input_ids", gpu.I32, rows, t)
	in := TextInput{Causal: true, Image: g.Reshape(g.Embedding(p.states, p.rowItems), rows, e.Tokens, e.Width)}
	if e.Mask != nil {
		p.emask = g.Input("encoder_mask", gpu.F32, e.Items, e.Tokens)
		in.ImageMask = g.Embedding(p.emask, p.rowItems)
	}
	logits := s.m.TextDecoder.Forward(g, p.ids, in)
	// Only the last position's logits are read back.
	p.out = g.Reshape(g.Slice(logits, 1, t-1, t), rows, s.m.Config.TextConfig.VocabSize)
	var err error
	if p.plan, err = g.Compile(s.be, graph.Config{Outputs: []*graph.Tensor{p.out}, DropoutOff: true}); err != nil {
		return nil, err
	}
	s.plans[[2]int{rows, t}] = p
	return p, nil
}

// Start implements generate.Stepper.
func (s *crossStepper) Start(prompts [][]int32, copies int) ([]float32, error) {
	if copies < 1 {
		return nil, fmt.Errorf("blip: %d copies", copies)
	}
	s.seqs = make([][]int32, len(prompts))
	s.item = make([]int, len(prompts))
	for i, p := range prompts {
		s.seqs[i] = append([]int32(nil), p...)
		s.item[i] = i / copies
		if s.item[i] >= s.enc.Items {
			return nil, fmt.Errorf("blip: row %d conditions on item %d of %d", i, s.item[i], s.enc.Items)
		}
	}
	return s.logits()
}

// Step implements generate.Stepper.
func (s *crossStepper) Step(tokens []int32) ([]float32, error) {
	if len(tokens) != len(s.seqs) {
		return nil, fmt.Errorf("blip: %d tokens for %d rows", len(tokens), len(s.seqs))
	}
	for i, t := range tokens {
		s.seqs[i] = append(s.seqs[i], t)
	}
	return s.logits()
}

// Reorder implements generate.Stepper.
func (s *crossStepper) Reorder(src []int) error {
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

// logits runs the decoder on every row's prefix: (rows, vocab).
func (s *crossStepper) logits() ([]float32, error) {
	rows := len(s.seqs)
	if rows == 0 {
		return nil, fmt.Errorf("blip: no rows to decode")
	}
	t := len(s.seqs[0])
	p, err := s.planFor(rows, t)
	if err != nil {
		return nil, err
	}
	ids := make([]int32, 0, rows*t)
	items := make([]int32, rows)
	for i, seq := range s.seqs {
		if len(seq) != t {
			return nil, fmt.Errorf("blip: row %d has %d tokens, row 0 has %d", i, len(seq), t)
		}
		ids = append(ids, seq...)
		items[i] = int32(s.item[i])
	}
	if !p.loaded {
		if err := p.plan.WriteF32(p.states, s.enc.States); err != nil {
			return nil, err
		}
		if p.emask != nil {
			if err := p.plan.WriteF32(p.emask, s.enc.Mask); err != nil {
				return nil, err
			}
		}
		p.loaded = true
	}
	if err := firstErr(p.plan.WriteI32(p.rowItems, items), p.plan.WriteI32(p.ids, ids)); err != nil {
		return nil, err
	}
	out := make([]float32, p.out.Numel())
	if err := firstErr(p.plan.Run(), p.plan.ReadF32(p.out, out)); err != nil {
		return nil, err
	}
	return out, nil
}
