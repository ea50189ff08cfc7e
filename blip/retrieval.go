package blip

import (
	"fmt"
	"math"

	"blip/gpu"
	"blip/graph"
)

// Match scores one image-text pair with BlipForImageTextRetrieval's heads.
type Match struct {
	// ITMLogits are itm_head's (no match, match) logits; ITMScore is their
	// softmax's match probability (use_itm_head=True).
	ITMLogits [2]float32
	ITMScore  float32
	// Cosine is the ITC cosine similarity of the normalised projections
	// (use_itm_head=False).
	Cosine float32
}

// MatchTexts scores every text (tokenised [CLS] text [SEP], as transformers
// feeds ITM) against each of batch preprocessed images: result[i][j] is
// image i with text j. The vision encoder runs once for all images; each
// image's states are then gathered to the texts on the device, so the text
// encoder pass is the only per-image work.
func (m *Model) MatchTexts(be gpu.Backend, pixels []float32, batch int, texts [][]int32) ([][]Match, error) {
	if err := m.need("ITM", m.TextEncoder != nil && m.ITMHead != nil && m.Config.TextConfig.IsDecoder); err != nil {
		return nil, err
	}
	if err := m.need("ITC", m.VisionProj != nil && m.TextProj != nil); err != nil {
		return nil, err
	}
	t := &m.Config.TextConfig
	ids, mask, n, err := PadRows(texts, int32(t.PadTokenID), t.MaxPositionEmbeddings)
	if err != nil {
		return nil, err
	}
	states, err := m.ImageStates(be, pixels, batch)
	if err != nil {
		return nil, err
	}
	v := &m.Config.VisionConfig
	rows := len(texts)
	g := graph.New()
	img := g.Input("image_states", gpu.F32, 1, v.NumPositions(), v.HiddenSize)
	iin := g.Input("input_ids", gpu.I32, rows, n)
	min := g.Input("attention_mask", gpu.F32, rows, n)
	itm, err := m.ITMLogits(g, GatherRows(g, img, make([]int, rows)), iin, min)
	if err != nil {
		return nil, err
	}
	sim, err := m.ITCSimilarity(g, img, iin, min)
	if err != nil {
		return nil, err
	}
	plan, err := g.Compile(be, encoderConfig(itm, sim))
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	if err := firstErr(plan.WriteI32(iin, ids), plan.WriteF32(min, mask)); err != nil {
		return nil, err
	}
	per := v.NumPositions() * v.HiddenSize
	logits, cos := make([]float32, rows*2), make([]float32, rows)
	out := make([][]Match, batch)
	for i := range out {
		if err := firstErr(plan.WriteF32(img, states[i*per:(i+1)*per]), plan.Run(), plan.ReadF32(itm, logits), plan.ReadF32(sim, cos)); err != nil {
			return nil, err
		}
		out[i] = make([]Match, rows)
		for j := range out[i] {
			l := [2]float32{logits[2*j], logits[2*j+1]}
			out[i][j] = Match{ITMLogits: l, ITMScore: matchProb(l), Cosine: cos[j]}
		}
	}
	return out, nil
}

// matchProb is softmax(l)[1].
func matchProb(l [2]float32) float32 {
	return float32(1 / (1 + math.Exp(float64(l[0])-float64(l[1]))))
}

// ImageEmbeddings returns the normalised ITC image features (batch, D) of
// preprocessed images: vision_proj of the [CLS] state, L2-normalised.
func (m *Model) ImageEmbeddings(be gpu.Backend, pixels []float32, batch int) ([]float32, error) {
	if err := m.need("ITC", m.TextEncoder != nil && m.VisionProj != nil && m.TextProj != nil); err != nil {
		return nil, err
	}
	g := graph.New()
	pin, patches, err := m.patchesInput(g, pixels, batch)
	if err != nil {
		return nil, err
	}
	img := m.Vision.Forward(g, pin)
	feat := g.L2Normalize(m.VisionProj.Forward(g, FirstToken(g, img), gpu.ActNone), 0)
	out, err := runOnce(g, be, []*graph.Tensor{feat}, func(p *graph.Plan) error { return p.WriteF32(pin, patches) })
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// TextEmbeddings returns the normalised ITC text features (len(texts), D):
// text_proj of the text-only encoder's first state, L2-normalised. texts
// are tokenised [CLS] text [SEP].
func (m *Model) TextEmbeddings(be gpu.Backend, texts [][]int32) ([]float32, error) {
	if err := m.need("ITC", m.TextEncoder != nil && m.VisionProj != nil && m.TextProj != nil); err != nil {
		return nil, err
	}
	t := &m.Config.TextConfig
	ids, mask, n, err := PadRows(texts, int32(t.PadTokenID), t.MaxPositionEmbeddings)
	if err != nil {
		return nil, err
	}
	g := graph.New()
	iin := g.Input("input_ids", gpu.I32, len(texts), n)
	min := g.Input("attention_mask", gpu.F32, len(texts), n)
	h := m.TextEncoder.Forward(g, iin, TextInput{Mask: min})
	feat := g.L2Normalize(m.TextProj.Forward(g, FirstToken(g, h), gpu.ActNone), 0)
	out, err := runOnce(g, be, []*graph.Tensor{feat}, func(p *graph.Plan) error {
		return firstErr(p.WriteI32(iin, ids), p.WriteF32(min, mask))
	})
	if err != nil {
		return nil, err
	}
	if len(out[0]) != len(texts)*m.Config.ImageTextHiddenSize {
		return nil, fmt.Errorf("blip: %d text features for %d texts of width %d", len(out[0]), len(texts), m.Config.ImageTextHiddenSize)
	}
	return out[0], nil
}
