package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// This file holds the building blocks of retrieval evaluation (blip eval
// --task retrieval): one vision pass giving both the image states ITM
// cross-attends to and the ITC image embeddings, and an ITM scorer for
// arbitrary (image, text) pairs that reuses already computed image states,
// so that re-ranking runs the vision encoder once per image, never once per
// pair.

// ImageStatesEmbeddings runs the vision encoder once on a batch of
// preprocessed images and returns its last hidden states (batch, N+1, C)
// and the normalised ITC image embeddings (batch, D) computed from them, as
// ImageStates and ImageEmbeddings would give them separately.
func (m *Model) ImageStatesEmbeddings(be gpu.Backend, pixels []float32, batch int) (states, embeds []float32, err error) {
	if err := m.need("ITC", m.Vision != nil && m.TextEncoder != nil && m.VisionProj != nil && m.TextProj != nil); err != nil {
		return nil, nil, err
	}
	g := graph.New()
	pin, patches, err := m.patchesInput(g, pixels, batch)
	if err != nil {
		return nil, nil, err
	}
	img := m.Vision.Forward(g, pin)
	feat := g.L2Normalize(m.VisionProj.Forward(g, FirstToken(g, img), gpu.ActNone), 0)
	out, err := runOnce(g, be, []*graph.Tensor{img, feat}, func(p *graph.Plan) error { return p.WriteF32(pin, patches) })
	if err != nil {
		return nil, nil, err
	}
	return out[0], out[1], nil
}

// ITMPair is one (image, text) pair for ITMScorer: Image indexes the image
// states passed to Score, Text is tokenised [CLS] text [SEP] (as MatchTexts
// takes them).
type ITMPair struct {
	Image int
	Text  []int32
}

// ITMScorer scores (image, text) pairs with the ITM head in fixed-size
// batches: one compiled plan whose inputs are the states of up to Images
// images, the image index of each of Rows pairs (gathered on the device)
// and the pairs' texts padded to TextLen tokens. Padding to a longer length
// than a text's own is masked out, so the logits are those of MatchTexts.
type ITMScorer struct {
	m                   *Model
	plan                *graph.Plan
	img, idx, ids, mask *graph.Tensor
	logits              *graph.Tensor
	// Images, Rows and TextLen are the plan's fixed sizes.
	Images, Rows, TextLen int
}

// NewITMScorer compiles the ITM scorer for batches of rows pairs over the
// states of at most images images, texts of at most textLen tokens.
func (m *Model) NewITMScorer(be gpu.Backend, images, rows, textLen int) (*ITMScorer, error) {
	if err := m.need("ITM", m.TextEncoder != nil && m.ITMHead != nil && m.Config.TextConfig.IsDecoder); err != nil {
		return nil, err
	}
	if images < 1 || rows < 1 || textLen < 1 {
		return nil, fmt.Errorf("blip: ITM scorer needs images, rows and text length >= 1 (got %d, %d, %d)", images, rows, textLen)
	}
	if mx := m.Config.TextConfig.MaxPositionEmbeddings; mx > 0 && textLen > mx {
		return nil, fmt.Errorf("blip: ITM scorer: texts of %d tokens are longer than the %d position embeddings", textLen, mx)
	}
	v := &m.Config.VisionConfig
	g := graph.New()
	s := &ITMScorer{m: m, Images: images, Rows: rows, TextLen: textLen}
	s.img = g.Input("image_states", gpu.F32, images, v.NumPositions(), v.HiddenSize)
	s.idx = g.Input("image_index", gpu.I32, rows)
	s.ids = g.Input("input_ids", gpu.I32, rows, textLen)
	s.mask = g.Input("attention_mask", gpu.F32, rows, textLen)
	var err error
	if s.logits, err = m.ITMLogits(g, GatherRowsBy(g, s.img, s.idx), s.ids, s.mask); err != nil {
		return nil, err
	}
	if s.plan, err = g.Compile(be, graph.Config{Outputs: []*graph.Tensor{s.logits}, DropoutOff: true}); err != nil {
		return nil, err
	}
	return s, nil
}

// Close frees the plan.
func (s *ITMScorer) Close() {
	if s.plan != nil {
		s.plan.Close()
		s.plan = nil
	}
}

// Score returns the ITM logits (no match, match) of every pair, pairs
// indexing the images of states ((images, N+1, C), images <= s.Images).
// The states are uploaded once; pairs run s.Rows at a time (the last batch
// padded with dummy rows whose results are dropped).
func (s *ITMScorer) Score(states []float32, images int, pairs []ITMPair) ([][2]float32, error) {
	v := &s.m.Config.VisionConfig
	per := v.NumPositions() * v.HiddenSize
	if images < 1 || images > s.Images || len(states) != images*per {
		return nil, fmt.Errorf("blip: ITM scorer: %d floats of states for %d images (at most %d, %d floats each)", len(states), images, s.Images, per)
	}
	buf := states
	if images < s.Images {
		buf = make([]float32, s.Images*per)
		copy(buf, states)
	}
	if err := s.plan.WriteF32(s.img, buf); err != nil {
		return nil, err
	}
	pad := int32(s.m.Config.TextConfig.PadTokenID)
	out := make([][2]float32, len(pairs))
	idx := make([]int32, s.Rows)
	ids := make([]int32, s.Rows*s.TextLen)
	mask := make([]float32, s.Rows*s.TextLen)
	logits := make([]float32, 2*s.Rows)
	for start := 0; start < len(pairs); start += s.Rows {
		n := min(s.Rows, len(pairs)-start)
		for r := range s.Rows {
			row, mrow := ids[r*s.TextLen:(r+1)*s.TextLen], mask[r*s.TextLen:(r+1)*s.TextLen]
			for t := range row {
				row[t], mrow[t] = pad, 0
			}
			if r >= n { // dummy row: image 0, one token
				idx[r] = 0
				mrow[0] = 1
				continue
			}
			p := pairs[start+r]
			if p.Image < 0 || p.Image >= images {
				return nil, fmt.Errorf("blip: ITM scorer: pair %d: image %d outside [0,%d)", start+r, p.Image, images)
			}
			if len(p.Text) == 0 || len(p.Text) > s.TextLen {
				return nil, fmt.Errorf("blip: ITM scorer: pair %d: text of %d tokens (want 1..%d)", start+r, len(p.Text), s.TextLen)
			}
			idx[r] = int32(p.Image)
			copy(row, p.Text)
			for t := range p.Text {
				mrow[t] = 1
			}
		}
		if err := firstErr(s.plan.WriteI32(s.idx, idx), s.plan.WriteI32(s.ids, ids), s.plan.WriteF32(s.mask, mask),
			s.plan.Run(), s.plan.ReadF32(s.logits, logits)); err != nil {
			return nil, err
		}
		for r := range n {
			out[start+r] = [2]float32{logits[2*r], logits[2*r+1]}
		}
	}
	return out, nil
}
