package finetune

import (
	"blip/blip"
	"blip/gpu"
	"blip/graph"
)

// inputs are a step graph's inputs; the unused ones of a task are nil.
type inputs struct {
	Patches *graph.Tensor // (B, N, 3*P*P)
	// caption: the decoder's ids (B, T) and mask, labels (B, T-1).
	// vqa: the question's ids (B, T) and mask.
	IDs, Mask, Labels *graph.Tensor
	// vqa: per answer row (A = B*MaxAnswers) its question, the answer's
	// ids (A, Ta) and mask, and the soft targets (A*(Ta-1), V): the
	// smoothed one-hot of each next token times its answer's weight, zero
	// on padding and on unused answer rows.
	AnsQ, AnsIDs, AnsMask, Targets *graph.Tensor
}

// buildCaption records BLIP_Decoder.forward: the ViT, then the decoder
// teacher-forced on [DEC] prompt caption [SEP] cross-attending to it; the
// mean next-token cross-entropy over the caption's tokens (prompt and
// padding labelled graph.IgnoreIndex by the batcher).
func buildCaption(g *graph.Graph, m *blip.Model, b, t int, smoothing float32) (*inputs, *graph.Tensor) {
	v := &m.Config.VisionConfig
	in := &inputs{
		Patches: g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize),
		IDs:     g.Input("input_ids", gpu.I32, b, t),
		Mask:    g.Input("attention_mask", gpu.F32, b, t),
		Labels:  g.Input("labels", gpu.I32, b, t-1),
	}
	image := m.Vision.Forward(g, in.Patches) // (B, N+1, Cv)
	logits := m.TextDecoder.Forward(g, in.IDs, blip.TextInput{Mask: in.Mask, Causal: true, Image: image})
	return in, g.CrossEntropy(g.Slice(logits, 1, 0, t-1), in.Labels, smoothing)
}

// buildVQA records BLIP_VQA.forward in training: the question encoded
// with the image, each answer row decoded from [DEC] cross-attending to
// its question's states (question padding masked), and
// sum_a weight_a * sum_t CE(a, t) / B, as the soft cross-entropy against
// the batcher's weighted, smoothed targets.
func buildVQA(g *graph.Graph, m *blip.Model, b, t, answers, ta int) (*inputs, *graph.Tensor) {
	v := &m.Config.VisionConfig
	a := b * answers
	in := &inputs{
		Patches: g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize),
		IDs:     g.Input("question_ids", gpu.I32, b, t),
		Mask:    g.Input("question_mask", gpu.F32, b, t),
		AnsQ:    g.Input("answer_question", gpu.I32, a),
		AnsIDs:  g.Input("answer_ids", gpu.I32, a, ta),
		AnsMask: g.Input("answer_mask", gpu.F32, a, ta),
		Targets: g.Input("answer_targets", gpu.F32, a*(ta-1), m.Config.TextConfig.VocabSize),
	}
	image := m.Vision.Forward(g, in.Patches)
	q := m.TextEncoder.Forward(g, in.IDs, blip.TextInput{Mask: in.Mask, Image: image}) // (B, T, H)
	qs := blip.GatherRowsBy(g, q, in.AnsQ)                                             // (A, T, H)
	qm := blip.GatherRowsBy(g, in.Mask, in.AnsQ)                                       // (A, T)
	logits := m.TextDecoder.Forward(g, in.AnsIDs, blip.TextInput{Mask: in.AnsMask, Causal: true, Image: qs, ImageMask: qm})
	vocab := m.Config.TextConfig.VocabSize
	next := g.Reshape(g.Slice(logits, 1, 0, ta-1), a*(ta-1), vocab)
	return in, g.SoftCrossEntropy(next, in.Targets)
}
