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
// so that re-ranking runs the vision encoder and the projection of the
// image to cross-attention keys and values once per image, never once per
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
// batches. The cross-attention keys and values of an image (every text
// layer's K and V projections of its N+1 states, most of a pair's work)
// are computed once per image by a small plan and copied on the device
// into the inputs of the scoring plan, which gathers them to each of Rows
// pairs by image index and runs the text encoder over the pairs' texts
// padded to TextLen tokens. Padding to a longer length than a text's own
// is masked out, so the logits are those of MatchTexts.
//
// The scoring plan holds the keys and values of Images images:
// Images * 2 * layers * (N+1) * hidden floats (42 MB per image for
// ViT-B/16 at 384px and BERT-base).
type ITMScorer struct {
	m *Model
	// kvPlan projects one image's states (1, N+1, Cv) to kvOut: each
	// layer's cross key and value (1, N+1, H), in layer order.
	kvPlan *graph.Plan
	kvIn   *graph.Tensor
	kvOut  []*graph.Tensor
	// plan reads kv (the same order, (Images, N+1, H) each).
	plan           *graph.Plan
	kv             []*graph.Tensor
	idx, ids, mask *graph.Tensor
	logits         *graph.Tensor
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
	v, t := &m.Config.VisionConfig, &m.Config.TextConfig
	n1 := v.NumPositions()
	s := &ITMScorer{m: m, Images: images, Rows: rows, TextLen: textLen}
	layers := m.TextEncoder.Layers

	g := graph.New()
	s.kvIn = g.Input("image_states", gpu.F32, 1, n1, v.HiddenSize)
	for i, l := range layers {
		if l.CrossAttention == nil {
			return nil, fmt.Errorf("blip: ITM scorer: text layer %d has no cross-attention", i)
		}
		end := g.Scope(fmt.Sprintf("itm.layer.%d.crossattention", i))
		key, val := l.CrossAttention.KeyValue(g, s.kvIn)
		s.kvOut = append(s.kvOut, key, val)
		end()
	}
	var err error
	if s.kvPlan, err = g.Compile(be, graph.Config{Outputs: s.kvOut, DropoutOff: true}); err != nil {
		return nil, err
	}

	g = graph.New()
	for i := range layers {
		s.kv = append(s.kv, g.Input(fmt.Sprintf("cross_key.%d", i), gpu.F32, images, n1, t.HiddenSize),
			g.Input(fmt.Sprintf("cross_value.%d", i), gpu.F32, images, n1, t.HiddenSize))
	}
	s.idx = g.Input("image_index", gpu.I32, rows)
	s.ids = g.Input("input_ids", gpu.I32, rows, textLen)
	s.mask = g.Input("attention_mask", gpu.F32, rows, textLen)
	s.logits = m.itmLogitsKV(g, s.kv, s.idx, s.ids, s.mask)
	if s.plan, err = g.Compile(be, graph.Config{Outputs: []*graph.Tensor{s.logits}, DropoutOff: true}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// itmLogitsKV is ITMLogits with every layer's cross-attention keys and
// values given per image (kv as ITMScorer.kv) and gathered to the rows by
// idx: projecting gathered states and gathering projected ones is the same
// arithmetic.
func (m *Model) itmLogitsKV(g *graph.Graph, kv []*graph.Tensor, idx, ids, mask *graph.Tensor) *graph.Tensor {
	defer g.Scope("itm")()
	h := m.TextEncoder.Forward(g, ids, TextInput{Mask: mask, CrossKV: func(i int) (k, v *graph.Tensor) {
		// Gathered per layer, right before use, so that a layer's rows
		// need not outlive it.
		return GatherRowsBy(g, kv[2*i], idx), GatherRowsBy(g, kv[2*i+1], idx)
	}})
	return m.ITMHead.Forward(g, FirstToken(g, h), gpu.ActNone)
}

// Close frees the plans.
func (s *ITMScorer) Close() {
	for _, p := range []**graph.Plan{&s.kvPlan, &s.plan} {
		if *p != nil {
			(*p).Close()
			*p = nil
		}
	}
}

// Score returns the ITM logits (no match, match) of every pair, pairs
// indexing the images of states ((images, N+1, C), images <= s.Images).
// The cross-attention keys and values of each image some pair names are
// computed once; pairs then run s.Rows at a time (the last batch padded
// with dummy rows whose results are dropped).
func (s *ITMScorer) Score(states []float32, images int, pairs []ITMPair) ([][2]float32, error) {
	v := &s.m.Config.VisionConfig
	per := v.NumPositions() * v.HiddenSize
	if images < 1 || images > s.Images || len(states) != images*per {
		return nil, fmt.Errorf("blip: ITM scorer: %d floats of states for %d images (at most %d, %d floats each)", len(states), images, s.Images, per)
	}
	used := make([]bool, images)
	for i, p := range pairs {
		if p.Image < 0 || p.Image >= images {
			return nil, fmt.Errorf("blip: ITM scorer: pair %d: image %d outside [0,%d)", i, p.Image, images)
		}
		if len(p.Text) == 0 || len(p.Text) > s.TextLen {
			return nil, fmt.Errorf("blip: ITM scorer: pair %d: text of %d tokens (want 1..%d)", i, len(p.Text), s.TextLen)
		}
		used[p.Image] = true
	}
	for i, u := range used {
		if !u {
			continue
		}
		if err := s.crossKV(i, states[i*per:(i+1)*per]); err != nil {
			return nil, err
		}
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
			if r >= n { // dummy row: one token over an image whose keys are set
				idx[r] = int32(pairs[start].Image)
				mrow[0] = 1
				continue
			}
			p := pairs[start+r]
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

// crossKV computes the cross-attention keys and values of one image's
// states into slot i of the scoring plan's inputs, copied on the device.
func (s *ITMScorer) crossKV(i int, states []float32) error {
	if err := s.kvPlan.WriteF32(s.kvIn, states); err != nil {
		return err
	}
	if err := s.kvPlan.Record(); err != nil {
		return err
	}
	calls := make([]gpu.Call, 0, len(s.kv))
	for j, t := range s.kvOut {
		src, err := s.kvPlan.View(t)
		if err != nil {
			return err
		}
		dst, err := s.plan.View(s.kv[j])
		if err != nil {
			return err
		}
		h := s.m.Config.TextConfig.HiddenSize
		n := src.Len
		calls = append(calls, gpu.Copy2D{X: src, Y: dst.Slice(int64(i)*n, n), Rows: int(n) / h, Cols: h})
	}
	be := s.kvPlan.Backend()
	if err := be.Do(calls...); err != nil {
		return err
	}
	return be.Sync()
}
