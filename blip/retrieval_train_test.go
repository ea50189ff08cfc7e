package blip

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/graph"
)

// retBatch is one synthetic retrieval batch: samples with the same image
// id share their image (patches), as captions of one picture do, and have
// their own captions.
type retBatch struct {
	patches       []float32
	ids, enc      []int32
	mask, noise   []float32
	imgQ, txtQ    []float32
	idx, idxQueue []int64
	alpha         float32
	b, t, q, d    int
}

func newRetBatch(cfg *BlipConfig, idx, idxQueue []int64, t int, seed uint64) *retBatch {
	s0 := newStepBatch(cfg, len(idx), t, len(idxQueue), seed)
	b := len(idx)
	v := &cfg.VisionConfig
	per := v.NumPatches() * v.NumChannels * v.PatchSize * v.PatchSize
	s := &retBatch{ids: s0.ids, enc: s0.enc, mask: s0.mask, noise: s0.noise, imgQ: s0.imgQ, txtQ: s0.txtQ,
		idx: idx, idxQueue: idxQueue, alpha: 0.4, b: b, t: t, q: len(idxQueue), d: s0.d}
	first := map[int64]int{}
	for i, id := range idx {
		j, ok := first[id]
		if !ok {
			first[id], j = i, i
		}
		s.patches = append(s.patches, s0.patches[j*per:(j+1)*per]...)
	}
	return s
}

func (s *retBatch) write(t *testing.T, p *graph.Plan, in *RetrievalInputs) {
	t.Helper()
	targets, neg, err := RetrievalTargets(s.idx, s.idxQueue)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []error{
		p.WriteF32(in.Patches, s.patches), p.WriteI32(in.IDs, s.ids), p.WriteI32(in.EncIDs, s.enc),
		p.WriteF32(in.Mask, s.mask), p.WriteF32(in.Alpha, []float32{s.alpha}), p.WriteF32(in.NegNoise, s.noise),
		p.WriteF32(in.Targets, targets), p.WriteF32(in.NegMask, neg),
		p.WriteF32(in.ImageQueue, s.imgQ), p.WriteF32(in.TextQueue, s.txtQ),
	} {
		if w != nil {
			t.Fatal(w)
		}
	}
}

// perturbedRetrieval is a tiny retrieval training model whose momentum
// copies differ from the parameters and whose temperature is 0.1.
func perturbedRetrieval(t *testing.T, be gpu.Backend) *Pretrain {
	t.Helper()
	m, err := NewRetrievalTrain(tinyPretrainConfig(t), RandomInit{Seed: 7, Std: 0.1}, be)
	if err != nil {
		t.Fatal(err)
	}
	if m.TextDecoder != nil {
		t.Fatal("the retrieval model declared a decoder")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, pr := range m.MomentumPairs() {
		v := make([]float32, pr[0].Numel())
		if err := pr[0].Read(v); err != nil {
			t.Fatal(err)
		}
		for i := range v {
			v[i] += float32(r.NormFloat64() * 0.05)
		}
		if err := pr[1].Write(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Temp.Write([]float32{0.1}); err != nil {
		t.Fatal(err)
	}
	return m
}

// retRef are the float64 reference's results.
type retRef struct {
	ita, itm        float64
	negImg, negText []int
	// targets per direction, held fixed by finite differences (no_grad).
	targets map[string][][]float64
}

// retrievalLosses is BLIP_Retrieval.forward in float64, written from
// blip_retrieval.py over the ref64 modules: sim_targets from
// idx == cat(idx, idx_queue), normalised per row; momentum distillation;
// hard negatives from softmax(image_feat @ text_feat^T / temp) with
// same-idx pairs zeroed (plus the graph's 1e-20 floor on the others),
// drawn by the exponential race with s.noise. With fixed, its negatives
// and targets are used instead.
func retrievalLosses(r *ref64, s *retBatch, fixed *retRef) retRef {
	cfg := r.cfg
	b, t, d, q := s.b, s.t, s.d, s.q
	v := &cfg.VisionConfig
	tc := &cfg.TextConfig
	cv, h, np := v.HiddenSize, tc.HiddenSize, v.NumPositions()
	patches, mask := make([]float64, len(s.patches)), make([]float64, len(s.mask))
	for i, a := range s.patches {
		patches[i] = float64(a)
	}
	for i, a := range s.mask {
		mask[i] = float64(a)
	}
	var out retRef
	image := r.vision("vision_model.", patches, b)
	imgFeat := normalizeRows(r.linear(firstRows(image, b, np, cv), b, cv, d, "vision_proj"), b, d)
	text := r.text("text_encoder.", "text_encoder.", textIn{emb: r.embed("text_encoder.", s.ids, b, t), b: b, t: t, mask: mask})
	txtFeat := normalizeRows(r.linear(firstRows(text, b, t, h), b, h, d, "text_proj"), b, d)
	imageM := r.vision("vision_model_m.", patches, b)
	imgFeatM := normalizeRows(r.linear(firstRows(imageM, b, np, cv), b, cv, d, "vision_proj_m"), b, d)
	textM := r.text("text_encoder_m.", "text_encoder_m.", textIn{emb: r.embed("text_encoder_m.", s.ids, b, t), b: b, t: t, mask: mask})
	txtFeatM := normalizeRows(r.linear(firstRows(textM, b, t, h), b, h, d, "text_proj_m"), b, d)
	temp := r.w("temp")[0]

	idxAll := append(append([]int64(nil), s.idx...), s.idxQueue...)
	simTargets := make([][]float64, b)
	for i := range b {
		simTargets[i] = make([]float64, b+q)
		var n float64
		for j, id := range idxAll {
			if id == s.idx[i] {
				simTargets[i][j] = 1
				n++
			}
		}
		for j := range simTargets[i] {
			simTargets[i][j] /= n
		}
	}
	all := func(featM []float64, queue []float32) [][]float64 {
		rows := make([][]float64, 0, b+q)
		for i := range b {
			rows = append(rows, featM[i*d:(i+1)*d])
		}
		for i := range q {
			row := make([]float64, d)
			for j := range d {
				row[j] = float64(queue[i*d+j])
			}
			rows = append(rows, row)
		}
		return rows
	}
	dot := func(x []float64, i int, row []float64) float64 {
		var s float64
		for e := range d {
			s += x[i*d+e] * row[e]
		}
		return s
	}
	alpha := float64(s.alpha)
	out.targets = map[string][][]float64{}
	itc := func(dir string, x, xM []float64, rows [][]float64) float64 {
		var loss float64
		tgts := make([][]float64, b)
		for i := range b {
			sim, simM := make([]float64, len(rows)), make([]float64, len(rows))
			for j, row := range rows {
				sim[j], simM[j] = dot(x, i, row)/temp, dot(xM, i, row)/temp
			}
			pm := logSoftmax(simM)
			tgts[i] = make([]float64, len(rows))
			for j := range pm {
				tgts[i][j] = alpha*math.Exp(pm[j]) + (1-alpha)*simTargets[i][j]
			}
			if fixed != nil {
				tgts[i] = fixed.targets[dir][i]
			}
			ls := logSoftmax(sim)
			for j := range ls {
				loss -= tgts[i][j] * ls[j]
			}
		}
		out.targets[dir] = tgts
		return loss / float64(b)
	}
	out.ita = (itc("i2t", imgFeat, imgFeatM, all(txtFeatM, s.txtQ)) + itc("t2i", txtFeat, txtFeatM, all(imgFeatM, s.imgQ))) / 2

	// Hard negatives: weights = softmax(x @ y^T / temp), masked_fill(same idx, 0).
	sample := func(x, y []float64, k int) []int {
		idx := make([]int, b)
		for i := range b {
			sim := make([]float64, b)
			for j := range b {
				sim[j] = dot(x, i, y[j*d:(j+1)*d]) / temp
			}
			p := logSoftmax(sim)
			best, arg := -1.0, -1
			for j := range b {
				w := 0.0
				if s.idx[j] != s.idx[i] {
					w = math.Exp(p[j]) + negFloor
				}
				if z := w * float64(s.noise[(k*b+i)*b+j]); z > best {
					best, arg = z, j
				}
			}
			idx[i] = arg
		}
		return idx
	}
	if fixed != nil {
		out.negImg, out.negText = fixed.negImg, fixed.negText
	} else {
		out.negImg, out.negText = sample(txtFeat, imgFeat, 0), sample(imgFeat, txtFeat, 1)
	}
	enc := r.embed("text_encoder.", s.enc, b, t)
	var emb, msk, img []float64
	add := func(ti, ii int) {
		emb = append(emb, enc[ti*t*h:(ti+1)*t*h]...)
		msk = append(msk, mask[ti*t:(ti+1)*t]...)
		img = append(img, image[ii*np*cv:(ii+1)*np*cv]...)
	}
	for i := range b {
		add(i, i)
	}
	for i := range b {
		add(i, out.negImg[i])
	}
	for i := range b {
		add(out.negText[i], i)
	}
	hs := r.text("text_encoder.", "text_encoder.", textIn{emb: emb, b: 3 * b, t: t, mask: msk, image: img})
	logits := r.linear(firstRows(hs, 3*b, t, h), 3*b, h, 2, "itm_head")
	for k := range 3 * b {
		ls := logSoftmax(logits[2*k : 2*k+2])
		label := 0
		if k < b {
			label = 1
		}
		out.itm -= ls[label]
	}
	out.itm /= float64(3 * b)
	return out
}

// Image ids of the test batch: 3 and 7 twice each in the batch, 3 and 7
// also in the idx queue, 11 only in the queue, -100 an empty queue slot.
var (
	retIdx      = []int64{3, 7, 3, 5, 7, 9}
	retIdxQueue = []int64{7, -100, 3, 11, 3}
)

// TestRetrievalTargets: same-id columns share the row's mass, in the batch
// and in the queue; the mask excludes exactly the same-id pairs; a batch
// without a negative for some sample is refused.
func TestRetrievalTargets(t *testing.T) {
	tg, neg, err := RetrievalTargets(retIdx, retIdxQueue)
	if err != nil {
		t.Fatal(err)
	}
	b, q := len(retIdx), len(retIdxQueue)
	// Row 0 (id 3): batch 0 and 2, queue 2 and 4: four positives.
	want0 := []float32{0.25, 0, 0.25, 0, 0, 0, 0, 0, 0.25, 0, 0.25}
	for j, w := range want0 {
		if tg[j] != w {
			t.Fatalf("targets row 0 = %v, want %v", tg[:b+q], want0)
		}
	}
	// Row 3 (id 5): itself only.
	for j := range b + q {
		w := float32(0)
		if j == 3 {
			w = 1
		}
		if tg[3*(b+q)+j] != w {
			t.Fatalf("targets row 3 = %v", tg[3*(b+q):4*(b+q)])
		}
	}
	for i := range b {
		var sum float64
		for j := range b + q {
			sum += float64(tg[i*(b+q)+j])
		}
		if math.Abs(sum-1) > 1e-6 {
			t.Errorf("targets row %d sums to %v", i, sum)
		}
		for j := range b {
			if (neg[i*b+j] == 1) != (retIdx[i] != retIdx[j]) {
				t.Errorf("neg mask (%d, %d) = %v for ids %d, %d", i, j, neg[i*b+j], retIdx[i], retIdx[j])
			}
		}
	}
	if _, _, err := RetrievalTargets([]int64{4, 4, 4}, []int64{-100}); err == nil {
		t.Error("a batch of one image id was accepted: no negative exists")
	}
}

// TestRetrievalLossesMatchFloat64 checks ITC (id targets in batch and
// queue, momentum distillation) and ITM (masked hard negatives) and the
// gradient of ITC + ITM with respect to every parameter tensor against
// the float64 reference: directional central differences, negatives and
// targets held fixed as BLIP's no_grad computes them.
func TestRetrievalLossesMatchFloat64(t *testing.T) {
	be := cpu.New()
	m := perturbedRetrieval(t, be)
	defer m.Close()
	const tl = 9
	s := newRetBatch(m.Config, retIdx, retIdxQueue, tl, 5)
	b := s.b
	ref := refFromParams(t, m)
	want := retrievalLosses(ref, s, nil)

	g := graph.New()
	in, out := m.BuildRetrievalStep(g, RetrievalShape{Batch: b, TextLen: tl, Queue: s.q})
	plan, err := g.Compile(be, graph.Config{Loss: out.Loss, Outputs: []*graph.Tensor{out.Losses, out.NegImage, out.NegText}, DropoutOff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	s.write(t, plan, in)
	if err := m.Params.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	if err := plan.Run(); err != nil {
		t.Fatal(err)
	}
	l := make([]float32, 2)
	if err := plan.ReadF32(out.Losses, l); err != nil {
		t.Fatal(err)
	}
	for i, w := range []float64{want.ita, want.itm} {
		if d := math.Abs(float64(l[i]) - w); d > 2e-5*math.Max(1, math.Abs(w)) {
			t.Errorf("loss %s = %.7g, float64 reference %.7g", []string{"ita", "itm"}[i], l[i], w)
		}
	}
	negI, negT := make([]int32, b), make([]int32, b)
	plan.ReadI32(out.NegImage, negI)
	plan.ReadI32(out.NegText, negT)
	for i := range b {
		if int(negI[i]) != want.negImg[i] || int(negT[i]) != want.negText[i] {
			t.Fatalf("negatives image %v text %v, reference %v %v", negI, negT, want.negImg, want.negText)
		}
		if retIdx[negI[i]] == retIdx[i] || retIdx[negT[i]] == retIdx[i] {
			t.Fatalf("a same-id pair was drawn as a negative: image %v text %v for ids %v", negI, negT, retIdx)
		}
	}
	// The id targets matter: the loss with one-hot targets (pretraining's)
	// differs.
	oneHot := *s
	oneHot.idx = []int64{100, 101, 102, 103, 104, 105}
	if alt := retrievalLosses(ref, &oneHot, nil); math.Abs(alt.ita-want.ita) < 1e-3 {
		t.Fatalf("ITC with id targets %.6g equals the one-hot one %.6g: the test batch shows nothing", want.ita, alt.ita)
	}

	r := rand.New(rand.NewPCG(99, 3))
	const eps = 1e-5
	checked := 0
	for _, p := range m.Params.List() {
		grad := make([]float32, p.Numel())
		if err := p.ReadGrad(grad); err != nil {
			t.Fatal(err)
		}
		base := ref.p[p.Name()]
		dir := make([]float64, len(base))
		var analytic, gn, dn float64
		for i := range dir {
			dir[i] = r.NormFloat64()
			analytic += float64(grad[i]) * dir[i]
			gn += float64(grad[i]) * float64(grad[i])
			dn += dir[i] * dir[i]
		}
		eval := func(sign float64) float64 {
			moved := make([]float64, len(base))
			for i := range base {
				moved[i] = base[i] + sign*eps*dir[i]
			}
			ref.p[p.Name()] = moved
			defer func() { ref.p[p.Name()] = base }()
			l := retrievalLosses(ref, s, &want)
			return l.ita + l.itm
		}
		numeric := (eval(1) - eval(-1)) / (2 * eps)
		tol := 1e-3*math.Abs(numeric) + 1e-4*math.Sqrt(gn*dn) + 1e-6
		if d := math.Abs(analytic - numeric); d > tol {
			t.Errorf("d(ita+itm)/d%s along a random direction: analytic %.6g, float64 differences %.6g (|diff| %.3g > %.3g)",
				p.Name(), analytic, numeric, d, tol)
		}
		switch {
		case numeric != 0:
			checked++
		case !strings.HasSuffix(p.Name(), ".key.bias"):
			// Attention key biases shift every score of a row alike:
			// their gradient is zero. Every other tensor must matter.
			t.Errorf("d(ita+itm)/d%s is zero", p.Name())
		}
	}
	t.Logf("%d parameter tensors with a non-zero gradient checked", checked)
}

// TestRetrievalNegativesNeverSameID draws hard negatives under 40 noise
// draws. Same-id samples share their image here, so without the mask
// (only the diagonal excluded, as pretraining does) same-id pairs are
// drawn often, which the control run confirms; with the id mask none is.
func TestRetrievalNegativesNeverSameID(t *testing.T) {
	be := cpu.New()
	m := perturbedRetrieval(t, be)
	defer m.Close()
	const tl = 9
	idx := []int64{1, 1, 1, 2, 2, 3}
	s := newRetBatch(m.Config, idx, []int64{1, 2}, tl, 8)
	b := s.b
	g := graph.New()
	in, out := m.BuildRetrievalStep(g, RetrievalShape{Batch: b, TextLen: tl, Queue: s.q})
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{out.NegImage, out.NegText}, DropoutOff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	s.write(t, plan, in)
	offDiag := make([]float32, b*b)
	for i := range offDiag {
		if i/b != i%b {
			offDiag[i] = 1
		}
	}
	_, idMask, err := RetrievalTargets(idx, s.idxQueue)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	count := func(mask []float32) (same int, distinct map[[2]int32]bool) {
		if err := plan.WriteF32(in.NegMask, mask); err != nil {
			t.Fatal(err)
		}
		distinct = map[[2]int32]bool{}
		r := rand.New(rand.NewPCG(r.Uint64(), 1))
		for range 40 {
			noise := make([]float32, 2*b*b)
			for i := range noise {
				noise[i] = float32(1 / r.ExpFloat64())
			}
			if err := plan.WriteF32(in.NegNoise, noise); err != nil {
				t.Fatal(err)
			}
			if err := plan.Run(); err != nil {
				t.Fatal(err)
			}
			negI, negT := make([]int32, b), make([]int32, b)
			plan.ReadI32(out.NegImage, negI)
			plan.ReadI32(out.NegText, negT)
			for i := range b {
				for _, j := range []int32{negI[i], negT[i]} {
					if idx[j] == idx[i] {
						same++
					}
					distinct[[2]int32{int32(i), j}] = true
				}
			}
		}
		return same, distinct
	}
	control, _ := count(offDiag)
	if control == 0 {
		t.Fatal("without the id mask no same-id pair was drawn in 40 draws: the test cannot tell")
	}
	same, distinct := count(idMask)
	if same != 0 {
		t.Errorf("%d same-id pairs drawn as hard negatives (the control drew %d)", same, control)
	}
	if len(distinct) < b+2 {
		t.Errorf("only %d distinct (row, negative) pairs in 40 draws: the sampler is not random", len(distinct))
	}
	t.Logf("same-id negatives: %d without the id mask, %d with it; %d distinct picks", control, same, len(distinct))
}

// TestRetrievalStepVulkanMatchesCPU runs one retrieval training step
// (dropout on, the same seeds) on lavapipe and on the CPU backend: the
// losses, the sampled negatives, the momentum features and every
// parameter gradient must agree.
func TestRetrievalStepVulkanMatchesCPU(t *testing.T) {
	type result struct {
		losses, featM []float32
		neg           []int32
		grads         map[string][]float32
	}
	const tl = 9
	step := func(be gpu.Backend) result {
		m := perturbedRetrieval(t, be)
		defer m.Close()
		m.TextEncoder.SetDropout(0.1)
		m.TextEncoderM.SetDropout(0.1)
		s := newRetBatch(m.Config, retIdx, retIdxQueue, tl, 3)
		g := graph.New()
		in, out := m.BuildRetrievalStep(g, RetrievalShape{Batch: s.b, TextLen: tl, Queue: s.q})
		plan, err := g.Compile(be, graph.Config{Loss: out.Loss, Outputs: []*graph.Tensor{out.Losses, out.NegImage, out.NegText, out.ImageFeatM, out.TextFeatM}})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		s.write(t, plan, in)
		plan.SetSeed(17)
		if err := m.Params.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		r := result{losses: make([]float32, 2), featM: make([]float32, 2*s.b*s.d), grads: map[string][]float32{}}
		if err := plan.ReadF32(out.Losses, r.losses); err != nil {
			t.Fatal(err)
		}
		plan.ReadF32(out.ImageFeatM, r.featM[:s.b*s.d])
		plan.ReadF32(out.TextFeatM, r.featM[s.b*s.d:])
		for _, x := range []*graph.Tensor{out.NegImage, out.NegText} {
			v := make([]int32, s.b)
			if err := plan.ReadI32(x, v); err != nil {
				t.Fatal(err)
			}
			r.neg = append(r.neg, v...)
		}
		for _, p := range m.Params.List() {
			v := make([]float32, p.Numel())
			if err := p.ReadGrad(v); err != nil {
				t.Fatal(err)
			}
			r.grads[p.Name()] = v
		}
		return r
	}
	want := step(cpu.New())
	got := step(openVulkan(t))
	for i := range want.losses {
		if d := math.Abs(float64(got.losses[i] - want.losses[i])); d > 1e-4*math.Max(1, math.Abs(float64(want.losses[i]))) {
			t.Errorf("loss %d: vulkan %v, cpu %v", i, got.losses[i], want.losses[i])
		}
	}
	for i := range want.neg {
		if got.neg[i] != want.neg[i] {
			t.Fatalf("negatives: vulkan %v, cpu %v", got.neg, want.neg)
		}
	}
	for i := range want.featM {
		if d := math.Abs(float64(got.featM[i] - want.featM[i])); d > 1e-4 {
			t.Fatalf("momentum feature %d: vulkan %v, cpu %v", i, got.featM[i], want.featM[i])
		}
	}
	for name, w := range want.grads {
		var mx, d float64
		for i := range w {
			mx = math.Max(mx, math.Abs(float64(w[i])))
			d = math.Max(d, math.Abs(float64(got.grads[name][i]-w[i])))
		}
		if d > 1e-3*math.Max(mx, 1e-3) {
			t.Errorf("gradient of %s: max |vulkan - cpu| %.3g (max |g| %.3g)", name, d, mx)
		}
	}
}
