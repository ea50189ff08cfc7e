package blip

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/graph"
)

// tinyPretrainConfig is the golden tiny retrieval config (64-px ViT,
// 2-layer text with cross-attention, vocab 137).
func tinyPretrainConfig(t *testing.T) *BlipConfig {
	t.Helper()
	cfg, err := LoadConfig("../testdata/hf-blip-tiny/tiny-retrieval/config.json")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// stepBatch is one synthetic batch for a step graph.
type stepBatch struct {
	patches           []float32
	ids, enc, dec     []int32
	labels            []int32
	mask, noise       []float32
	imgQ, txtQ        []float32
	alpha             float32
	b, t, q, d, vocab int
}

func newStepBatch(cfg *BlipConfig, b, t, q int, seed uint64) *stepBatch {
	r := rand.New(rand.NewPCG(seed, 1))
	v := &cfg.VisionConfig
	s := &stepBatch{b: b, t: t, q: q, d: cfg.ImageTextHiddenSize, vocab: cfg.TextConfig.VocabSize, alpha: 0.4}
	s.patches = make([]float32, b*v.NumPatches()*v.NumChannels*v.PatchSize*v.PatchSize)
	for i := range s.patches {
		s.patches[i] = float32(r.NormFloat64())
	}
	for i := range b {
		n := 3 + r.IntN(t-2) // tokens before padding, [CLS] and [SEP] included
		for j := range t {
			id, m := int32(0), float32(0)
			switch {
			case j == 0:
				id, m = 2, 1
			case j < n-1:
				id, m = int32(5+r.IntN(s.vocab-7)), 1
			case j == n-1:
				id, m = 3, 1
			}
			s.ids = append(s.ids, id)
			s.mask = append(s.mask, m)
		}
		_ = i
	}
	s.enc = append([]int32(nil), s.ids...)
	s.dec = append([]int32(nil), s.ids...)
	for i := range b {
		s.enc[i*t] = 136 // [ENC] in the tiny vocab
		s.dec[i*t] = 135 // [DEC]
	}
	var err error
	pad := 0
	lab, err := ShiftLabels(s.dec, b, t, pad)
	if err != nil {
		panic(err)
	}
	s.labels = lab
	s.noise = make([]float32, 2*b*b)
	for i := range s.noise {
		s.noise[i] = float32(1 / r.ExpFloat64())
	}
	queue := func() []float32 {
		x := make([]float32, q*s.d)
		for i := range q {
			var n float64
			for j := range s.d {
				x[i*s.d+j] = float32(r.NormFloat64())
				n += float64(x[i*s.d+j]) * float64(x[i*s.d+j])
			}
			for j := range s.d {
				x[i*s.d+j] = float32(float64(x[i*s.d+j]) / math.Sqrt(n))
			}
		}
		return x
	}
	s.imgQ, s.txtQ = queue(), queue()
	return s
}

func (s *stepBatch) write(t *testing.T, p *graph.Plan, in *StepInputs) {
	t.Helper()
	for _, w := range []error{
		p.WriteF32(in.Patches, s.patches), p.WriteI32(in.IDs, s.ids), p.WriteI32(in.EncIDs, s.enc),
		p.WriteI32(in.DecIDs, s.dec), p.WriteI32(in.Labels, s.labels), p.WriteF32(in.Mask, s.mask),
		p.WriteF32(in.Alpha, []float32{s.alpha}), p.WriteF32(in.NegNoise, s.noise),
		p.WriteF32(in.ImageQueue, s.imgQ), p.WriteF32(in.TextQueue, s.txtQ),
	} {
		if w != nil {
			t.Fatal(w)
		}
	}
}

// TestPretrainStepVulkanMatchesCPU runs one training step (dropout on,
// the same seeds) on lavapipe and on the CPU reference: the losses, the
// sampled negatives and every parameter gradient must agree.
func TestPretrainStepVulkanMatchesCPU(t *testing.T) {
	type result struct {
		losses []float32
		neg    []int32
		grads  map[string][]float32
	}
	const b, tl, q = 4, 9, 6
	step := func(be gpu.Backend) result {
		m := perturbedPretrain(t, be)
		defer m.Close()
		m.SetDropout(0.1)
		g := graph.New()
		in, out := m.BuildStep(g, StepShape{Batch: b, TextLen: tl, Queue: q, LabelSmoothing: 0.1})
		plan, err := g.Compile(be, graph.Config{Loss: out.Loss, Outputs: []*graph.Tensor{out.ITA, out.ITM, out.LM, out.NegImage, out.NegText}})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		newStepBatch(m.Config, b, tl, q, 3).write(t, plan, in)
		plan.SetSeed(17)
		if err := m.Params.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		r := result{grads: map[string][]float32{}}
		for _, x := range []*graph.Tensor{out.ITA, out.ITM, out.LM} {
			v := make([]float32, 1)
			if err := plan.ReadF32(x, v); err != nil {
				t.Fatal(err)
			}
			r.losses = append(r.losses, v[0])
		}
		for _, x := range []*graph.Tensor{out.NegImage, out.NegText} {
			v := make([]int32, b)
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

// refFromParams reads every parameter and momentum copy into a float64
// reference model.
func refFromParams(t *testing.T, m *Pretrain) *ref64 {
	t.Helper()
	r := &ref64{cfg: m.Config, p: map[string][]float64{}}
	for _, ps := range []*graph.Params{m.Params, m.Momentum} {
		for _, p := range ps.List() {
			v := make([]float32, p.Numel())
			if err := p.Read(v); err != nil {
				t.Fatal(err)
			}
			r.p[p.Name()] = f64(v)
		}
	}
	return r
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// perturbed returns a tiny pretraining model whose momentum copies differ
// from the parameters (so that the momentum path is checked on its own)
// and whose temperature is not its initial value.
func perturbedPretrain(t *testing.T, be gpu.Backend) *Pretrain {
	t.Helper()
	m, err := NewPretrain(tinyPretrainConfig(t), RandomInit{Seed: 7, Std: 0.1}, be)
	if err != nil {
		t.Fatal(err)
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

// TestPretrainLossesMatchFloat64 checks each pretraining loss (ITC with
// momentum distillation over a queue, ITM with sampled hard negatives, LM
// with label smoothing) and the gradient of each with respect to every
// parameter tensor against the independent float64 forward (ref64):
// directional central differences along a random direction per tensor,
// with the sampled negatives held fixed as BLIP's no_grad sampling is.
func TestPretrainLossesMatchFloat64(t *testing.T) {
	be := cpu.New()
	m := perturbedPretrain(t, be)
	defer m.Close()
	const b, tl, q = 4, 9, 6 // a queue that is not a multiple of the batch
	const smoothing = 0.1
	s := newStepBatch(m.Config, b, tl, q, 5)
	ref := refFromParams(t, m)
	want := ref.losses(s, smoothing, nil)

	for _, which := range []string{"ita", "itm", "lm"} {
		t.Run(which, func(t *testing.T) {
			g := graph.New()
			in, out := m.BuildStep(g, StepShape{Batch: b, TextLen: tl, Queue: q, LabelSmoothing: smoothing})
			loss := map[string]*graph.Tensor{"ita": out.ITA, "itm": out.ITM, "lm": out.LM}[which]
			plan, err := g.Compile(be, graph.Config{Loss: loss, Outputs: []*graph.Tensor{out.ITA, out.ITM, out.LM, out.NegImage, out.NegText, out.ImageFeatM, out.TextFeatM}, DropoutOff: true})
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
			read := func(x *graph.Tensor) float64 {
				v := make([]float32, 1)
				if err := plan.ReadF32(x, v); err != nil {
					t.Fatal(err)
				}
				return float64(v[0])
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"ita", read(out.ITA), want.ita}, {"itm", read(out.ITM), want.itm}, {"lm", read(out.LM), want.lm}} {
				if d := math.Abs(c.got - c.want); d > 2e-5*math.Max(1, math.Abs(c.want)) {
					t.Errorf("loss %s = %.7g, float64 reference %.7g", c.name, c.got, c.want)
				}
			}
			negI, negT := make([]int32, b), make([]int32, b)
			plan.ReadI32(out.NegImage, negI)
			plan.ReadI32(out.NegText, negT)
			for i := range b {
				if int(negI[i]) != want.negImg[i] || int(negT[i]) != want.negText[i] {
					t.Fatalf("negatives image %v text %v, reference %v %v", negI, negT, want.negImg, want.negText)
				}
				if negI[i] == int32(i) || negT[i] == int32(i) {
					t.Fatalf("a positive was sampled as a negative: image %v text %v", negI, negT)
				}
			}
			fm := make([]float32, b*s.d)
			plan.ReadF32(out.TextFeatM, fm)
			for i, x := range fm {
				if math.Abs(float64(x)-want.txtFeatM[i]) > 1e-5 {
					t.Fatalf("text_feat_m[%d] = %v, reference %v", i, x, want.txtFeatM[i])
				}
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
					l := ref.losses(s, smoothing, &want)
					return map[string]float64{"ita": l.ita, "itm": l.itm, "lm": l.lm}[which]
				}
				numeric := (eval(1) - eval(-1)) / (2 * eps)
				tol := 1e-3*math.Abs(numeric) + 1e-4*math.Sqrt(gn*dn) + 1e-6
				if d := math.Abs(analytic - numeric); d > tol {
					t.Errorf("d%s/d%s along a random direction: analytic %.6g, float64 differences %.6g (|diff| %.3g > %.3g)",
						which, p.Name(), analytic, numeric, d, tol)
				}
				if numeric != 0 {
					checked++
				}
			}
			t.Logf("%s: %d parameter tensors with a non-zero gradient checked", which, checked)
		})
	}
}

// TestPretrainExport exports a (perturbed, so untied and unshared values
// would show) pretraining model as HF captioning, retrieval and VQA
// folders, loads them as any HF folder is loaded, and checks that they
// compute what the pretraining modules compute: decoder logits, ITM
// logits and ITC similarities.
func TestPretrainExport(t *testing.T) {
	be := cpu.New()
	m := perturbedPretrain(t, be)
	defer m.Close()
	raw, err := os.ReadFile("../testdata/hf-blip-tiny/tiny-retrieval/config.json")
	if err != nil {
		t.Fatal(err)
	}
	const b, tl = 2, 7
	s := newStepBatch(m.Config, b, tl, 2, 9)
	run := func(build func(g *graph.Graph, patches, ids, mask *graph.Tensor) *graph.Tensor, n int) []float32 {
		g := graph.New()
		v := &m.Config.VisionConfig
		patches := g.Input("patches", gpu.F32, b, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
		ids := g.Input("ids", gpu.I32, b, tl)
		mask := g.Input("mask", gpu.F32, b, tl)
		y := build(g, patches, ids, mask)
		plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{y}})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		plan.WriteF32(patches, s.patches)
		plan.WriteI32(ids, s.ids[:b*tl])
		plan.WriteF32(mask, s.mask[:b*tl])
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, n)
		if err := plan.ReadF32(y, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v after export, %v before", what, i, got[i], want[i])
			}
		}
	}
	vocab := m.Config.TextConfig.VocabSize
	wantLogits := run(func(g *graph.Graph, p, ids, mask *graph.Tensor) *graph.Tensor {
		return m.TextDecoder.Forward(g, ids, TextInput{Mask: mask, Causal: true, Image: m.Vision.Forward(g, p)})
	}, b*tl*vocab)
	wantITM := run(func(g *graph.Graph, p, ids, mask *graph.Tensor) *graph.Tensor {
		h := m.TextEncoder.Forward(g, ids, TextInput{Mask: mask, Image: m.Vision.Forward(g, p)})
		return m.ITMHead.Forward(g, FirstToken(g, h), gpu.ActNone)
	}, b*2)
	for _, kind := range ExportKinds {
		dir := filepath.Join(t.TempDir(), kind.String())
		if err := m.Export(dir, kind, raw, "../testdata/hf-blip-tiny/tiny-retrieval/vocab.txt"); err != nil {
			t.Fatal(err)
		}
		hf, err := LoadDir(dir, be)
		if err != nil {
			t.Fatal(err)
		}
		if hf.Kind != kind {
			t.Fatalf("exported %v loads as %v", kind, hf.Kind)
		}
		if hf.TextDecoder != nil {
			same(kind.String()+" decoder logits", run(func(g *graph.Graph, p, ids, mask *graph.Tensor) *graph.Tensor {
				img, _ := hf.VisionForward(g, p)
				l, _ := hf.CaptionLogits(g, img, ids, mask)
				return l
			}, b*tl*vocab), wantLogits)
		}
		if hf.ITMHead != nil {
			same(kind.String()+" ITM logits", run(func(g *graph.Graph, p, ids, mask *graph.Tensor) *graph.Tensor {
				img, _ := hf.VisionForward(g, p)
				l, _ := hf.ITMLogits(g, img, ids, mask)
				return l
			}, b*2), wantITM)
		}
		hf.Close()
	}
}

// TestEnqueueWrapsAround writes batches of 4 rows into a queue of 6 (not a
// multiple of the batch): rows go in order from the pointer and wrap to
// the start, and the pointer comes back modulo the queue size.
func TestEnqueueWrapsAround(t *testing.T) {
	be := cpu.New()
	const rows, q, d = 4, 6, 3
	qb, err := be.Alloc(q * d * 4)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := be.Alloc(rows * d * 4)
	if err != nil {
		t.Fatal(err)
	}
	queue, feat := gpu.Whole(qb, gpu.F32), gpu.Whole(fb, gpu.F32)
	want := make([]float32, q*d)
	ptr := 0
	for step := range 4 {
		f := make([]float32, rows*d)
		for i := range f {
			f[i] = float32(100*step + i)
		}
		if err := be.Write(fb, 0, f32Bytes(f)); err != nil {
			t.Fatal(err)
		}
		for r := range rows {
			copy(want[((ptr+r)%q)*d:], f[r*d:(r+1)*d])
		}
		var calls []gpu.Call
		calls, ptr = EnqueueCalls(feat, queue, rows, q, d, ptr)
		if err := be.Do(calls...); err != nil {
			t.Fatal(err)
		}
		if want := (step + 1) * rows % q; ptr != want {
			t.Fatalf("step %d: pointer %d, want %d", step, ptr, want)
		}
	}
	got := make([]float32, q*d)
	if err := be.Read(qb, 0, f32Bytes(got)); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("queue %v, want %v", got, want)
		}
	}
}

func f32Bytes(s []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*4)
}
