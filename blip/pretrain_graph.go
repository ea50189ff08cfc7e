package blip

import (
	"fmt"
	"math"
	"math/rand/v2"

	"blip/gpu"
	"blip/graph"
)

// StepInputs are the inputs of a pretraining step graph.
type StepInputs struct {
	Patches *graph.Tensor // (B, N, 3*P*P) f32: Patchify of the images
	IDs     *graph.Tensor // (B, T) i32: [CLS] caption [SEP] pad...
	EncIDs  *graph.Tensor // (B, T) i32: the same with [ENC] first (ITM)
	DecIDs  *graph.Tensor // (B, T) i32: the same with [DEC] first (LM)
	Labels  *graph.Tensor // (B, T-1) i32: DecIDs shifted, pads IgnoreIndex
	Mask    *graph.Tensor // (B, T) f32: 1 for tokens, 0 for padding
	Alpha   *graph.Tensor // (1) f32: the distillation weight of this step
	// NegNoise (2, B, B) f32 holds 1/E for E ~ Exp(1), drawn on the host
	// from the run's seed: the hard-negative sampler's randomness.
	NegNoise *graph.Tensor
	// ImageQueue and TextQueue (Q, D) f32 are the momentum feature queues,
	// one feature per row, kept on the device between steps.
	ImageQueue, TextQueue *graph.Tensor
}

// StepOutputs are the tensors a pretraining step reads back or reuses.
type StepOutputs struct {
	ITA, ITM, LM, Loss *graph.Tensor // () f32 each; Loss = ITA + ITM + LM
	// Losses (3) holds ITA, ITM and LM side by side: one read per step.
	Losses *graph.Tensor
	// ImageFeatM and TextFeatM (B, D) are the momentum features the step
	// enqueues.
	ImageFeatM, TextFeatM *graph.Tensor
	// NegImage and NegText (B) i32 are the sampled hard negatives: the
	// image paired with text b, the text paired with image b.
	NegImage, NegText *graph.Tensor
}

// StepShape fixes the sizes of a step graph.
type StepShape struct {
	Batch, TextLen, Queue int
	// LabelSmoothing of the LM loss (BLIP: 0.1).
	LabelSmoothing float32
}

// BuildStep records one pretraining forward, as BLIP_Pretrain.forward:
//
//   - ITC: normalised 256-d projections of the image [CLS] state and of the
//     text-only encoder's [CLS] state; similarities to the momentum features
//     of the batch followed by the queues, divided by the temperature; soft
//     targets alpha*softmax(momentum sims) + (1-alpha)*one-hot; the mean of
//     the image-to-text and text-to-image soft cross-entropies.
//   - ITM: the encoder with [ENC] first cross-attends to the image for B
//     positive pairs, B (text, hard negative image) and B (hard negative
//     text, image) pairs; the negatives are drawn per row from
//     softmax(in-batch sims) + 1e-4 with the diagonal zeroed, by the
//     exponential-race form of multinomial sampling, argmax_j w_j / E_j,
//     which picks j with probability w_j / sum(w); a 2-way cross-entropy.
//   - LM: the decoder with [DEC] first, causal, cross-attending to the
//     image; next-token cross-entropy with label smoothing, pads ignored.
//
// No gradient flows through the targets or the sampling, as BLIP computes
// them under no_grad.
func (m *Pretrain) BuildStep(g *graph.Graph, s StepShape) (*StepInputs, *StepOutputs) {
	b, t, q := s.Batch, s.TextLen, s.Queue
	v := &m.Config.VisionConfig
	d := m.Config.ImageTextHiddenSize
	in := &StepInputs{
		Patches:    g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize),
		IDs:        g.Input("input_ids", gpu.I32, b, t),
		EncIDs:     g.Input("enc_input_ids", gpu.I32, b, t),
		DecIDs:     g.Input("dec_input_ids", gpu.I32, b, t),
		Labels:     g.Input("labels", gpu.I32, b, t-1),
		Mask:       g.Input("attention_mask", gpu.F32, b, t),
		Alpha:      g.Input("alpha", gpu.F32, 1),
		NegNoise:   g.Input("neg_noise", gpu.F32, 2, b, b),
		ImageQueue: g.Input("image_queue", gpu.F32, q, d),
		TextQueue:  g.Input("text_queue", gpu.F32, q, d),
	}
	out := &StepOutputs{}

	eye := make([]float32, b*(b+q))
	for i := range b {
		eye[i*(b+q)+i] = 1
	}
	onehot := g.Const(fmt.Sprintf("itc_onehot%dx%d", b, b+q), eye, b, b+q)
	c := m.buildITC(g, in.Patches, in.IDs, in.Mask, in.ImageQueue, in.TextQueue, in.Alpha, onehot)
	image, simI2T, simT2I := c.image, c.simI2T, c.simT2I
	out.ImageFeatM, out.TextFeatM, out.ITA = c.imgFeatM, c.txtFeatM, c.loss

	// ITM with hard negatives.
	end := g.Scope("itm")
	offDiag := make([]float32, b*b)
	for i := range offDiag {
		if i/b != i%b {
			offDiag[i] = 1
		}
	}
	off := g.Const(fmt.Sprintf("itm_offdiag%d", b), offDiag, b, b)
	floor := g.Const("itm_floor", []float32{1e-4}, 1)
	sample := func(sim *graph.Tensor, k int) *graph.Tensor {
		w := g.Mul(g.Add(g.Softmax(g.Slice(sim, 1, 0, b)), floor), off)
		noise := g.Reshape(g.Slice(in.NegNoise, 0, k, k+1), b, b)
		return g.ArgMax(g.Mul(w, noise))
	}
	out.NegImage = sample(simT2I, 0)       // for each text, an image
	out.NegText = sample(simI2T, 1)        // for each image, a text
	x := m.TextEncoder.Embed(g, in.EncIDs) // (B, T, H)
	xAll := g.Concat(0, x, x, GatherRowsBy(g, x, out.NegText))
	maskAll := g.Concat(0, in.Mask, in.Mask, GatherRowsBy(g, in.Mask, out.NegText))
	imgAll := g.Concat(0, image, GatherRowsBy(g, image, out.NegImage), image)
	h := m.TextEncoder.Encode(g, xAll, TextInput{Mask: maskAll, Image: imgAll})
	itmLogits := m.ITMHead.Forward(g, FirstToken(g, h), gpu.ActNone) // (3B, 2)
	labels := make([]int32, 3*b)
	for i := range b {
		labels[i] = 1
	}
	out.ITM = g.CrossEntropy(itmLogits, g.ConstI32(fmt.Sprintf("itm_labels%d", b), labels, 3*b), 0)
	end()

	// LM.
	end = g.Scope("lm")
	logits := m.TextDecoder.Forward(g, in.DecIDs, TextInput{Mask: in.Mask, Causal: true, Image: image})
	out.LM = g.CrossEntropy(g.Slice(logits, 1, 0, t-1), in.Labels, s.LabelSmoothing)
	end()

	out.Loss = g.Add(g.Add(out.ITA, out.ITM), out.LM)
	out.Losses = g.Concat(0, g.Reshape(out.ITA, 1), g.Reshape(out.ITM, 1), g.Reshape(out.LM, 1))
	return in, out
}

// itc is what BLIP's ITC computes, for the rest of a step to reuse.
type itc struct {
	image              *graph.Tensor // the ViT's states (B, N+1, Cv)
	imgFeat, txtFeat   *graph.Tensor // normalised projections (B, D)
	imgFeatM, txtFeatM *graph.Tensor // the momentum encoders' (B, D)
	simI2T, simT2I     *graph.Tensor // (B, B+Q) over the temperature
	temp               *graph.Tensor
	loss               *graph.Tensor // ()
}

// buildITC records the ITC of pretraining and retrieval fine-tuning:
// normalised projections of the image [CLS] state and of the text-only
// encoder's [CLS] state, similarities to the momentum features of the
// batch followed by the queues over the temperature, soft targets
// alpha*softmax(momentum sims) + (1-alpha)*hard (hard (B, B+Q): the
// one-hot diagonal in pretraining, image-id positives in retrieval), and
// the mean of the image-to-text and text-to-image soft cross-entropies.
func (m *Pretrain) buildITC(g *graph.Graph, patches, ids, mask, imageQueue, textQueue, alpha, hard *graph.Tensor) *itc {
	c := &itc{}
	c.image = m.Vision.Forward(g, patches) // (B, N+1, Cv)
	end := g.Scope("itc")
	c.imgFeat = g.L2Normalize(m.VisionProj.Forward(g, FirstToken(g, c.image), gpu.ActNone), 0)
	text := m.TextEncoder.Forward(g, ids, TextInput{Mask: mask})
	c.txtFeat = g.L2Normalize(m.TextProj.Forward(g, FirstToken(g, text), gpu.ActNone), 0)
	end()

	end = g.Scope("momentum")
	imageM := m.VisionM.Forward(g, patches)
	c.imgFeatM = g.L2Normalize(m.VisionProjM.Forward(g, FirstToken(g, imageM), gpu.ActNone), 0)
	textM := m.TextEncoderM.Forward(g, ids, TextInput{Mask: mask})
	c.txtFeatM = g.L2Normalize(m.TextProjM.Forward(g, FirstToken(g, textM), gpu.ActNone), 0)
	end()

	end = g.Scope("itc")
	defer end()
	c.temp = g.Param(m.Temp)
	// sims against [batch momentum features; queue], rows = queries.
	sims := func(x, featM, queue *graph.Tensor) *graph.Tensor {
		return g.Div(g.Concat(1, g.MatMul(x, featM, false, true), g.MatMul(x, queue, false, true)), c.temp)
	}
	targets := func(simM *graph.Tensor) *graph.Tensor {
		// alpha*softmax + (1-alpha)*hard = hard + alpha*(softmax - hard)
		return g.Add(hard, g.Mul(g.Sub(g.Softmax(simM), hard), alpha))
	}
	c.simI2T = sims(c.imgFeat, c.txtFeatM, textQueue)
	c.simT2I = sims(c.txtFeat, c.imgFeatM, imageQueue)
	lossI2T := g.SoftCrossEntropy(c.simI2T, targets(sims(c.imgFeatM, c.txtFeatM, textQueue)))
	lossT2I := g.SoftCrossEntropy(c.simT2I, targets(sims(c.txtFeatM, c.imgFeatM, imageQueue)))
	c.loss = g.Scale(g.Add(lossI2T, lossT2I), 0.5)
	return c
}

// GatherRowsBy returns x[idx] along the first axis for idx an i32 tensor
// (sampled negatives, the question of each answer row): an embedding
// lookup in x seen as a (rows, rest) table, whose backward scatter-adds
// into x.
func GatherRowsBy(g *graph.Graph, x, idx *graph.Tensor) *graph.Tensor {
	if !x.Valid() || !idx.Valid() || x.Shape().Rank() < 1 {
		return g.Reshape(x, 0) // records why (or keeps the first error)
	}
	s := x.Shape()
	rows := g.Embedding(g.Reshape(x, s[0], x.Numel()/s[0]), idx)
	return g.Reshape(rows, append([]int{idx.Numel()}, s[1:]...)...)
}

// RandomQueues returns the initial image and text feature queues (q, d):
// normalised Gaussian rows, as BLIP's randn then normalize, drawn from one
// stream seeded by seed (the image queue first).
func RandomQueues(seed uint64, q, d int) (image, text []float32) {
	r := rand.New(rand.NewPCG(seed, 0x71))
	queue := func() []float32 {
		v := make([]float32, q*d)
		for i := range q {
			row := v[i*d : (i+1)*d]
			var n float64
			for j := range row {
				z := r.NormFloat64()
				row[j] = float32(z)
				n += z * z
			}
			n = math.Max(math.Sqrt(n), 1e-12)
			for j := range row {
				row[j] = float32(float64(row[j]) / n)
			}
		}
		return v
	}
	image = queue()
	return image, queue()
}

// MomentumCalls records param_m = mom*param_m + (1-mom)*param for every
// momentum pair (BLIP's _momentum_update), in place and without scratch
// memory: param_m -= param; param_m *= mom; param_m += param.
func (m *Pretrain) MomentumCalls(mom float32) []gpu.Call {
	calls := make([]gpu.Call, 0, 3*len(m.pairs))
	for _, pr := range m.pairs {
		p, q := pr[0].Value(), pr[1].Value()
		n := int(p.Len)
		calls = append(calls,
			gpu.Binary{Op: gpu.BinarySub, A: q, B: p, C: q, N: n},
			gpu.Unary{Op: gpu.UnaryScale, X: q, Y: q, N: n, Alpha: mom},
			gpu.Binary{Op: gpu.BinaryAdd, A: q, B: p, C: q, N: n},
		)
	}
	return calls
}

// MomentumPairs returns the (parameter, momentum copy) pairs.
func (m *Pretrain) MomentumPairs() [][2]*graph.Param { return m.pairs }

// EnqueueCalls copies the rows of feat (rows, d) into queue (q, d) from row
// ptr on, wrapping around the end (a queue size that is not a multiple of
// the batch), and returns the next pointer (BLIP's _dequeue_and_enqueue).
func EnqueueCalls(feat, queue gpu.View, rows, q, d, ptr int) ([]gpu.Call, int) {
	var calls []gpu.Call
	done := 0
	for done < rows {
		n := min(rows-done, q-ptr)
		calls = append(calls, gpu.Copy2D{
			X: feat.Slice(int64(done*d), int64(n*d)), Y: queue.Slice(int64(ptr*d), int64(n*d)),
			Rows: n, Cols: d,
		})
		done += n
		ptr = (ptr + n) % q
	}
	return calls, ptr
}
