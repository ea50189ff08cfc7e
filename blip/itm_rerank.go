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
// are computed once per image, up to itmKVBatch images per run of a small
// plan, and copied on the device into slots of the scoring plan's inputs;
// that plan gathers them to each of Rows pairs by slot and runs the text
// encoder over the pairs' texts padded to TextLen tokens. Padding to a
// longer length than a text's own is masked out, so the logits are those
// of MatchTexts.
//
// Image states reach the slots from host memory (Score) or, without a
// round trip through the host, from a view on the same device, such as a
// vision plan's output (LoadStates, then ScorePairs).
//
// The scoring plan holds the keys and values of Images images:
// Images * 2 * layers * (N+1) * hidden floats (42 MB per image for
// ViT-B/16 at 384px and BERT-base).
type ITMScorer struct {
	m *Model
	// kvPlan projects kvBatch images' states (kvBatch, N+1, Cv) to kvOut:
	// each layer's cross key and value (kvBatch, N+1, H), in layer order.
	kvPlan  *graph.Plan
	kvIn    *graph.Tensor
	kvOut   []*graph.Tensor
	kvBatch int
	// plan reads kv (the same order, (Images, N+1, H) each).
	plan           *graph.Plan
	kv             []*graph.Tensor
	idx, ids, mask *graph.Tensor
	logits         *graph.Tensor
	// shared scores batches whose pairs all name one slot (one image's
	// candidate texts): its own copy of that slot's keys and values,
	// (1, N+1, H) each, attended by all rows at once, no gather
	// (TextAttention.Attend). Compiled on first use; sharedSlot is the
	// slot its inputs hold, -1 after anything may have rewritten it.
	shared                   *graph.Plan
	sharedKV                 []*graph.Tensor
	sharedIDs, sharedMask    *graph.Tensor
	sharedLogits             *graph.Tensor
	sharedSlot               int
	runsShared, runsGathered int // batches scored each way (tests)
	// loaded marks the slots holding some image's keys and values.
	loaded []bool
	// hostIn gathers Score's states for one projection run.
	hostIn []float32
	// Images, Rows and TextLen are the plan's fixed sizes.
	Images, Rows, TextLen int
}

// itmKVBatch is the most images one run of the scorer's key and value
// projection takes: enough rows (16 x 577) to fill a large GPU's grid,
// while its outputs stay a fraction of the scoring plan (16 x 42 MB at
// base size, 384px).
var itmKVBatch = 16

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
	s := &ITMScorer{m: m, Images: images, Rows: rows, TextLen: textLen, kvBatch: min(images, itmKVBatch), loaded: make([]bool, images), sharedSlot: -1}
	layers := m.TextEncoder.Layers

	g := graph.New()
	s.kvIn = g.Input("image_states", gpu.F32, s.kvBatch, n1, v.HiddenSize)
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
	if s.plan, err = g.Compile(be, encoderConfig(s.logits)); err != nil {
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

// sharedPlan compiles the one-image scoring plan on first use.
func (s *ITMScorer) sharedPlan() error {
	if s.shared != nil {
		return nil
	}
	n1 := s.m.Config.VisionConfig.NumPositions()
	h := s.m.Config.TextConfig.HiddenSize
	g := graph.New()
	for i := range s.m.TextEncoder.Layers {
		s.sharedKV = append(s.sharedKV, g.Input(fmt.Sprintf("cross_key.%d", i), gpu.F32, 1, n1, h),
			g.Input(fmt.Sprintf("cross_value.%d", i), gpu.F32, 1, n1, h))
	}
	s.sharedIDs = g.Input("input_ids", gpu.I32, s.Rows, s.TextLen)
	s.sharedMask = g.Input("attention_mask", gpu.F32, s.Rows, s.TextLen)
	func() {
		defer g.Scope("itm")()
		kv := s.sharedKV
		x := s.m.TextEncoder.Forward(g, s.sharedIDs, TextInput{Mask: s.sharedMask, CrossKV: func(i int) (k, v *graph.Tensor) { return kv[2*i], kv[2*i+1] }})
		s.sharedLogits = s.m.ITMHead.Forward(g, FirstToken(g, x), gpu.ActNone)
	}()
	p, err := g.Compile(s.plan.Backend(), encoderConfig(s.sharedLogits))
	if err != nil {
		return err
	}
	s.shared = p
	return nil
}

// scoreShared scores one batch (ids, mask: s.Rows rows) whose rows all
// name slot on the one-image plan, copying the slot's keys and values to
// its inputs on the device when they hold another's.
func (s *ITMScorer) scoreShared(slot int, ids []int32, mask, logits []float32) error {
	if err := s.sharedPlan(); err != nil {
		return err
	}
	if s.sharedSlot != slot {
		calls, err := s.copyKV(s.plan, s.kv, slot, s.shared, s.sharedKV, 0, 1)
		if err == nil {
			err = s.plan.Backend().Do(calls...)
		}
		if err != nil {
			return err
		}
		s.sharedSlot = slot
	}
	s.runsShared++
	return firstErr(s.shared.WriteI32(s.sharedIDs, ids), s.shared.WriteF32(s.sharedMask, mask),
		s.shared.Run(), s.shared.ReadF32(s.sharedLogits, logits))
}

// Close frees the plans.
func (s *ITMScorer) Close() {
	for _, p := range []**graph.Plan{&s.kvPlan, &s.plan, &s.shared} {
		if *p != nil {
			(*p).Close()
			*p = nil
		}
	}
}

// Score returns the ITM logits (no match, match) of every pair, pairs
// indexing the images of states ((images, N+1, C) in host memory, images
// <= s.Images). The cross-attention keys and values of each image some
// pair names are computed once, into the slot of its index (other slots
// keep what they held); the pairs are then scored as ScorePairs does.
func (s *ITMScorer) Score(states []float32, images int, pairs []ITMPair) ([][2]float32, error) {
	v := &s.m.Config.VisionConfig
	per := v.NumPositions() * v.HiddenSize
	if images < 1 || images > s.Images || len(states) != images*per {
		return nil, fmt.Errorf("blip: ITM scorer: %d floats of states for %d images (at most %d, %d floats each)", len(states), images, s.Images, per)
	}
	if err := s.checkPairs(pairs, images); err != nil {
		return nil, err
	}
	var used []int
	seen := make([]bool, images)
	for _, p := range pairs {
		if !seen[p.Image] {
			seen[p.Image] = true
			used = append(used, p.Image)
		}
	}
	// kvBatch images per run, gathered on the host into the projection's
	// input (the write waits for the previous run: gpu.Backend's order).
	if len(s.hostIn) != s.kvBatch*per {
		s.hostIn = make([]float32, s.kvBatch*per)
	}
	in := s.hostIn
	be := s.kvPlan.Backend()
	for c := 0; c < len(used); c += s.kvBatch {
		group := used[c:min(c+s.kvBatch, len(used))]
		for k, i := range group {
			copy(in[k*per:(k+1)*per], states[i*per:(i+1)*per])
		}
		if err := s.kvPlan.WriteF32(s.kvIn, in); err != nil {
			return nil, err
		}
		if err := s.kvPlan.Record(); err != nil {
			return nil, err
		}
		// One set of copies per run of consecutive images (pairs usually
		// name them in order).
		var calls []gpu.Call
		for k := 0; k < len(group); {
			n := 1
			for k+n < len(group) && group[k+n] == group[k]+n {
				n++
			}
			cs, err := s.kvCopies(k, group[k], n)
			if err != nil {
				return nil, err
			}
			calls = append(calls, cs...)
			k += n
		}
		if err := be.Do(calls...); err != nil {
			return nil, err
		}
		for _, i := range group {
			s.loaded[i] = true
		}
	}
	return s.ScorePairs(pairs)
}

// LoadStates computes the cross-attention keys and values of n images
// whose last hidden states ((n, N+1, C) or more, f32) are in src, a view on
// the scorer's device (a vision plan's output, say), into slots first to
// first+n-1, without passing through host memory. The work is recorded
// without waiting for it, ordered as gpu.Backend orders calls and writes:
// scoring recorded later reads the keys, work recorded later that
// overwrites src (the vision plan's next run) runs after it, and host
// writes it reads wait for it.
func (s *ITMScorer) LoadStates(src gpu.View, first, n int) error {
	v := &s.m.Config.VisionConfig
	per := v.NumPositions() * v.HiddenSize
	switch {
	case n < 1:
		return fmt.Errorf("blip: ITM scorer: states of %d images (want at least 1)", n)
	case first < 0 || first+n > s.Images:
		return fmt.Errorf("blip: ITM scorer: images %d..%d outside the %d slots", first, first+n-1, s.Images)
	case src.DType != gpu.F32 || src.Len < int64(n*per):
		return fmt.Errorf("blip: ITM scorer: states view %s holds fewer than %d images of %d f32", src, n, per)
	}
	dst, err := s.kvPlan.View(s.kvIn)
	if err != nil {
		return err
	}
	be := s.kvPlan.Backend()
	for c := 0; c < n; c += s.kvBatch {
		k := min(s.kvBatch, n-c)
		rows := k * v.NumPositions()
		if err := be.Do(gpu.Copy2D{X: src.Slice(int64(c*per), int64(k*per)), Y: dst.Slice(0, int64(k*per)), Rows: rows, Cols: v.HiddenSize}); err != nil {
			return err
		}
		if err := s.kvPlan.Record(); err != nil {
			return err
		}
		calls, err := s.kvCopies(0, first+c, k)
		if err != nil {
			return err
		}
		if err := be.Do(calls...); err != nil {
			return err
		}
	}
	for i := first; i < first+n; i++ {
		s.loaded[i] = true
	}
	return nil
}

// LoadPixels runs the vision encoder over n preprocessed images (pixels
// as ImageStates takes them) and loads their states into slots first to
// first+n-1 as LoadStates does: the states never leave the device.
func (s *ITMScorer) LoadPixels(pixels []float32, first, n int) error {
	vp, err := s.m.recordVision(s.kvPlan.Backend(), pixels, n)
	if err != nil {
		return err
	}
	src, err := vp.plan.View(vp.out)
	if err != nil {
		return err
	}
	return s.LoadStates(src, first, n)
}

// kvCopies copies the projection's keys and values of its images from,
// from+1, ..., from+n-1 into slots to, ..., to+n-1 of the scoring plan.
func (s *ITMScorer) kvCopies(from, to, n int) ([]gpu.Call, error) {
	s.sharedSlot = -1 // the one-image plan's copy may be of a slot rewritten here
	return s.copyKV(s.kvPlan, s.kvOut, from, s.plan, s.kv, to, n)
}

// copyKV copies images from..from+n-1 of every layer's keys and values
// (tensors st of plan src, (images, N+1, H) each, in layer order) into
// images to..to+n-1 of the matching tensors dt of plan dst.
func (s *ITMScorer) copyKV(src *graph.Plan, st []*graph.Tensor, from int, dst *graph.Plan, dt []*graph.Tensor, to, n int) ([]gpu.Call, error) {
	h := s.m.Config.TextConfig.HiddenSize
	per := int64(s.m.Config.VisionConfig.NumPositions() * h)
	calls := make([]gpu.Call, 0, len(st))
	for j, t := range st {
		x, err := src.View(t)
		if err != nil {
			return nil, err
		}
		y, err := dst.View(dt[j])
		if err != nil {
			return nil, err
		}
		calls = append(calls, gpu.Copy2D{X: x.Slice(int64(from)*per, int64(n)*per), Y: y.Slice(int64(to)*per, int64(n)*per), Rows: n * int(per) / h, Cols: h})
	}
	return calls, nil
}

// checkPairs validates pairs over images slots.
func (s *ITMScorer) checkPairs(pairs []ITMPair, images int) error {
	for i, p := range pairs {
		if p.Image < 0 || p.Image >= images {
			return fmt.Errorf("blip: ITM scorer: pair %d: image %d outside [0,%d)", i, p.Image, images)
		}
		if len(p.Text) == 0 || len(p.Text) > s.TextLen {
			return fmt.Errorf("blip: ITM scorer: pair %d: text of %d tokens (want 1..%d)", i, len(p.Text), s.TextLen)
		}
	}
	return nil
}

// ScorePairs returns the ITM logits (no match, match) of every pair, pairs
// indexing slots loaded by Score or LoadStates. Pairs run s.Rows at a
// time, the last batch padded with dummy rows whose results are dropped.
func (s *ITMScorer) ScorePairs(pairs []ITMPair) ([][2]float32, error) {
	if err := s.checkPairs(pairs, s.Images); err != nil {
		return nil, err
	}
	for i, p := range pairs {
		if !s.loaded[p.Image] {
			return nil, fmt.Errorf("blip: ITM scorer: pair %d: image slot %d holds no image's states (Score or LoadStates fill it)", i, p.Image)
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
		one := s.Rows > 1
		for _, i := range idx {
			one = one && i == idx[0]
		}
		if one {
			if err := s.scoreShared(int(idx[0]), ids, mask, logits); err != nil {
				return nil, err
			}
		} else {
			s.runsGathered++
			if err := firstErr(s.plan.WriteI32(s.idx, idx), s.plan.WriteI32(s.ids, ids), s.plan.WriteF32(s.mask, mask),
				s.plan.Run(), s.plan.ReadF32(s.logits, logits)); err != nil {
				return nil, err
			}
		}
		for r := range n {
			out[start+r] = [2]float32{logits[2*r], logits[2*r+1]}
		}
	}
	return out, nil
}
