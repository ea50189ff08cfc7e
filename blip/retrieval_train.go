package blip

import (
	"fmt"

	"blip/gpu"
	"blip/graph"
)

// Retrieval fine-tuning (BLIP_Retrieval.forward of the reference
// blip_retrieval.py, with train_retrieval.py's loss ITC + ITM) over the
// pretraining model's modules: the same ITC with momentum encoders and
// feature queues as pretraining, except that the targets come from image
// ids (captions of the same image are positives, in the batch and in the
// queue), and ITM whose hard negatives are never captions of the same
// image. There is no language-modelling loss.

// NewRetrievalTrain declares the modules retrieval fine-tuning trains (the
// ViT, the text encoder with cross-attention, both ITC projections, the
// ITM head and the temperature) and their momentum copies, reads every
// value from src and uploads them to be. It is NewPretrain without the
// decoder: an HF BlipForImageTextRetrieval folder has none, and retrieval
// does not use it. The result's TextDecoder is nil: use it with
// BuildRetrievalStep, MomentumCalls, SetDropout and Export(KindRetrieval),
// not with BuildStep.
// Momentum copies read src's "_m" tensors when it has them (a resumed
// run), else the originals (BLIP's copy_params). src must provide "temp"
// (HF folders do not hold it; compose a source that does).
func NewRetrievalTrain(cfg *BlipConfig, src WeightSource, be gpu.Backend) (*Pretrain, error) {
	return loadPretrain(cfg, src, be, false)
}

// RetrievalShape fixes the sizes of a retrieval step graph.
type RetrievalShape struct {
	Batch, TextLen, Queue int
}

// RetrievalInputs are the inputs of a retrieval step graph.
type RetrievalInputs struct {
	Patches *graph.Tensor // (B, N, 3*P*P) f32
	IDs     *graph.Tensor // (B, T) i32: [CLS] caption [SEP] pad... (ITC)
	// EncIDs (B, T) i32 are the ITM rows' ids: IDs with [ENC] first as
	// BLIP trains, or IDs themselves ([CLS] first, as transformers'
	// BlipForImageTextRetrieval and this code base's ITM inference feed).
	EncIDs *graph.Tensor
	Mask   *graph.Tensor // (B, T) f32
	Alpha  *graph.Tensor // (1) f32: the distillation weight of this step
	// Targets (B, B+Q) f32 are BLIP's sim_targets: row i is 1 where
	// idx_i equals the id of column j (the batch, then the idx queue),
	// divided by the row's count (RetrievalTargets).
	Targets *graph.Tensor
	// NegMask (B, B) f32 is 1 where idx_i != idx_j: the pairs a hard
	// negative may be drawn from (BLIP's weights.masked_fill_(mask, 0)).
	NegMask *graph.Tensor
	// NegNoise (2, B, B) f32 holds 1/E for E ~ Exp(1): the sampler's
	// randomness, drawn on the host.
	NegNoise *graph.Tensor
	// ImageQueue and TextQueue (Q, D) f32 are the momentum feature queues.
	ImageQueue, TextQueue *graph.Tensor
}

// RetrievalOutputs are what a retrieval step reads back or reuses.
type RetrievalOutputs struct {
	ITA, ITM, Loss *graph.Tensor // () f32 each; Loss = ITA + ITM
	Losses         *graph.Tensor // (2): ITA, ITM
	// ImageFeatM and TextFeatM (B, D) are the momentum features to enqueue.
	ImageFeatM, TextFeatM *graph.Tensor
	// NegImage and NegText (B) i32: the image drawn for text b, the text
	// drawn for image b.
	NegImage, NegText *graph.Tensor
}

// negFloor is added to the sampling weights of allowed pairs so that an
// allowed pair whose softmax weight underflows to 0 still outranks every
// masked pair: a row with any allowed pair never draws a same-id one. It
// is far below any weight that matters (the largest of B is >= 1/B).
const negFloor = 1e-20

// BuildRetrievalStep records one retrieval fine-tuning forward, as
// BLIP_Retrieval.forward (negative_all_rank has no meaning on one device):
//
//   - ITC: normalised projections of the image [CLS] state and of the
//     text-only encoder's [CLS] state; similarities to the momentum
//     features of the batch followed by the queues, over the temperature;
//     targets alpha*softmax(momentum sims) + (1-alpha)*sim_targets with
//     sim_targets from image ids (in.Targets); the mean of the two soft
//     cross-entropies.
//   - ITM: B positive pairs, B (text, hard negative image) and B (hard
//     negative text, image) pairs through the encoder cross-attending to
//     the image; the negatives drawn per row from softmax(image_feat @
//     text_feat^T / temp) (the online features, in the batch) with
//     same-id pairs zeroed, by the exponential race argmax_j w_j / E_j; a
//     2-way cross-entropy over the 3B rows.
//
// No gradient flows through the targets or the sampling (BLIP's no_grad).
func (m *Pretrain) BuildRetrievalStep(g *graph.Graph, s RetrievalShape) (*RetrievalInputs, *RetrievalOutputs) {
	b, t, q := s.Batch, s.TextLen, s.Queue
	v := &m.Config.VisionConfig
	d := m.Config.ImageTextHiddenSize
	in := &RetrievalInputs{
		Patches:    g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize),
		IDs:        g.Input("input_ids", gpu.I32, b, t),
		EncIDs:     g.Input("enc_input_ids", gpu.I32, b, t),
		Mask:       g.Input("attention_mask", gpu.F32, b, t),
		Alpha:      g.Input("alpha", gpu.F32, 1),
		Targets:    g.Input("sim_targets", gpu.F32, b, b+q),
		NegMask:    g.Input("neg_mask", gpu.F32, b, b),
		NegNoise:   g.Input("neg_noise", gpu.F32, 2, b, b),
		ImageQueue: g.Input("image_queue", gpu.F32, q, d),
		TextQueue:  g.Input("text_queue", gpu.F32, q, d),
	}
	out := &RetrievalOutputs{}

	c := m.buildITC(g, in.Patches, in.IDs, in.Mask, in.ImageQueue, in.TextQueue, in.Alpha, in.Targets)
	image, imgFeat, txtFeat, temp := c.image, c.imgFeat, c.txtFeat, c.temp
	out.ImageFeatM, out.TextFeatM, out.ITA = c.imgFeatM, c.txtFeatM, c.loss

	end := g.Scope("itm")
	floor := g.Const("itm_neg_floor", []float32{negFloor}, 1)
	sample := func(x, y *graph.Tensor, k int) *graph.Tensor {
		sim := g.Div(g.MatMul(x, y, false, true), temp) // (B, B)
		w := g.Mul(g.Add(g.Softmax(sim), floor), in.NegMask)
		noise := g.Reshape(g.Slice(in.NegNoise, 0, k, k+1), b, b)
		return g.ArgMax(g.Mul(w, noise))
	}
	out.NegImage = sample(txtFeat, imgFeat, 0) // for each text, an image
	out.NegText = sample(imgFeat, txtFeat, 1)  // for each image, a text
	x := m.TextEncoder.Embed(g, in.EncIDs)     // (B, T, H)
	xAll := g.Concat(0, x, x, GatherRowsBy(g, x, out.NegText))
	maskAll := g.Concat(0, in.Mask, in.Mask, GatherRowsBy(g, in.Mask, out.NegText))
	imgAll := g.Concat(0, image, GatherRowsBy(g, image, out.NegImage), image)
	h := m.TextEncoder.Encode(g, xAll, TextInput{Mask: maskAll, Image: imgAll})
	itmLogits := m.ITMHead.Forward(g, FirstToken(g, h), gpu.ActNone) // (3B, 2)
	labels := make([]int32, 3*b)
	for i := range b {
		labels[i] = 1
	}
	out.ITM = g.CrossEntropy(itmLogits, g.ConstI32(fmt.Sprintf("retrieval_itm_labels%d", b), labels, 3*b), 0)
	end()

	out.Loss = g.Add(out.ITA, out.ITM)
	out.Losses = g.Concat(0, g.Reshape(out.ITA, 1), g.Reshape(out.ITM, 1))
	return in, out
}

// RetrievalTargets computes a step's ITC targets and negative mask on the
// host from the batch's image ids idx (B) and the idx queue (Q; BLIP fills
// it with -100 at first, which matches no id): targets (B, B+Q) row i is
// 1/n_i where idx_i equals the column's id (the batch, then the queue) and
// 0 elsewhere, n_i the count of such columns (at least 1, the diagonal);
// negMask (B, B) is 1 where idx_i != idx_j. A batch in which some sample
// has no other-id sample has no hard negative for it: an error (BLIP's
// torch.multinomial fails there too).
func RetrievalTargets(idx, queue []int64) (targets, negMask []float32, err error) {
	b, q := len(idx), len(queue)
	targets = make([]float32, b*(b+q))
	negMask = make([]float32, b*b)
	for i, id := range idx {
		row := targets[i*(b+q) : (i+1)*(b+q)]
		n, negs := 0, 0
		for j, other := range idx {
			if other == id {
				row[j] = 1
				n++
			} else {
				negMask[i*b+j] = 1
				negs++
			}
		}
		for j, other := range queue {
			if other == id {
				row[b+j] = 1
				n++
			}
		}
		for j := range row {
			row[j] /= float32(n)
		}
		if negs == 0 {
			return nil, nil, fmt.Errorf("blip: every sample of the batch shows image id %d: no hard negative for ITM (use a larger batch or more images)", id)
		}
	}
	return targets, negMask, nil
}
