package blip

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"blip/blip/generate"
	"blip/data/safetensors"
	"blip/gpu"
	"blip/gpu/cpu"
)

// cacheTol is the relative tolerance of the cached decoder's logits against
// the recompute path: |cached - recomputed| <= cacheTol * max(|recomputed|, 1).
const cacheTol = 1e-5

// twinStepper drives the KV-cache stepper and the recompute reference side
// by side through the same calls, checks that their logits agree at every
// step and returns the cached ones.
type twinStepper struct {
	t     *testing.T
	name  string
	ref   *crossStepper
	kv    *kvStepper
	steps int
	worst float64
}

func (s *twinStepper) check(what string, got, want []float32, errGot, errWant error) ([]float32, error) {
	s.t.Helper()
	if errGot != nil || errWant != nil {
		return nil, fmt.Errorf("%s: cached: %v, recompute: %v", what, errGot, errWant)
	}
	if len(got) != len(want) {
		return nil, fmt.Errorf("%s: %d cached logits, %d recomputed", what, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		rel := d / math.Max(math.Abs(float64(want[i])), 1)
		if !(rel <= cacheTol) { // NaN fails too
			return nil, fmt.Errorf("%s %s step %d: logit %d: cached %v, recomputed %v", s.name, what, s.steps, i, got[i], want[i])
		}
		s.worst = math.Max(s.worst, rel)
	}
	s.steps++
	return got, nil
}

func (s *twinStepper) Start(prompts [][]int32, copies int) ([]float32, error) {
	a, ea := s.kv.Start(prompts, copies)
	b, eb := s.ref.Start(prompts, copies)
	return s.check("start", a, b, ea, eb)
}

func (s *twinStepper) Step(tokens []int32) ([]float32, error) {
	a, ea := s.kv.Step(tokens)
	b, eb := s.ref.Step(tokens)
	return s.check("step", a, b, ea, eb)
}

func (s *twinStepper) Reorder(src []int) error {
	if err := s.kv.Reorder(src); err != nil {
		return err
	}
	return s.ref.Reorder(src)
}

func newTwin(t *testing.T, name string, m *Model, be gpu.Backend, images []float32, items, capHint int) *twinStepper {
	kv, err := newKVStepper(m, be, images, items, capHint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kv.close)
	ref := newCrossStepper(m, be, m.imageEncoderStates(images, items))
	t.Cleanup(ref.close)
	return &twinStepper{t: t, name: name, ref: ref, kv: kv}
}

// The cached decoder's logits must equal the recompute path's at every
// step, through beam search (reorders that duplicate and drop rows),
// greedy and sampling with finished rows dropped, a prompt, cache growth
// past the capacity hint, and hand-made reorders that move rows between
// images and chain two reorders before a step.
func TestKVStepperMatchesRecompute(t *testing.T) {
	gold := openGolden(t)
	pixels := gold.f32("pixel_values")
	want := readGoldenCaptions(t)
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be, m, images := tinyCaptionImages(t, bc, pixels)
			cases := []struct {
				name    string
				cfg     func(*generate.Config)
				prompts [][]int32
				capHint int
			}{
				{"beam3", func(c *generate.Config) { c.NumBeams, c.MaxLength, c.MinLength = 3, 12, 5 }, nil, 12},
				{"beam4_return2", func(c *generate.Config) { c.NumBeams, c.NumReturnSequences, c.MaxLength = 4, 2, 10 }, nil, 10},
				{"greedy_len20_grow", func(c *generate.Config) { c.MaxNewTokens, c.MinNewTokens = 20, 20 }, nil, 2},
				{"sample2", func(c *generate.Config) {
					c.DoSample, c.NumReturnSequences, c.MaxLength, c.Seed, c.TopK = true, 2, 12, 7, 20
				}, nil, 12},
				{"prompt_beam2", func(c *generate.Config) { c.NumBeams, c.MaxLength = 2, 12 }, want.PromptGreedy.PromptIDs, 12},
			}
			for _, c := range cases {
				cfg := m.CaptionConfig()
				c.cfg(&cfg)
				ps, err := generate.BLIPPrompts(c.prompts, 4, cfg.BosTokenID)
				if err != nil {
					t.Fatal(err)
				}
				tw := newTwin(t, c.name, m, be, images, 4, c.capHint)
				if _, err := generate.Generate(tw, ps, cfg); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				t.Logf("%s: %d steps, worst relative difference %.3g", c.name, tw.steps, tw.worst)
			}

			// Hand-made reorders.
			tw := newTwin(t, "manual", m, be, images, 4, 3)
			bos := m.CaptionConfig().BosTokenID
			prompts := make([][]int32, 8)
			for i := range prompts {
				prompts[i] = []int32{bos, int32(1000 + 17*i)}
			}
			logits, err := tw.Start(prompts, 2)
			if err != nil {
				t.Fatal(err)
			}
			step := func() {
				t.Helper()
				vocab := len(logits) / len(tw.ref.seqs)
				next := make([]int32, len(tw.ref.seqs))
				for i := range next {
					next[i] = int32(argmaxF32(logits[i*vocab : (i+1)*vocab]))
				}
				if logits, err = tw.Step(next); err != nil {
					t.Fatal(err)
				}
			}
			reorder := func(src ...int) {
				t.Helper()
				if err := tw.Reorder(src); err != nil {
					t.Fatal(err)
				}
			}
			crossCalls := func(want int) {
				t.Helper()
				v := gpu.View{Len: 1 << 20, DType: gpu.F32}
				if got := len(tw.kv.crossCalls(0, 1, v, v, v)); got != want {
					t.Errorf("rows of images %v: %d cross-attention calls, want %d", tw.kv.item, got, want)
				}
			}
			crossCalls(1)
			step()
			reorder(7, 0, 0, 3, 5, 2) // across images, duplicated, fewer rows
			crossCalls(5)
			step()
			reorder(0, 1, 2, 3, 4, 5) // identity
			step()
			reorder(1, 2, 4) // in place, towards the front
			step()
			reorder(2, 0, 1)
			reorder(1, 1, 0) // two reorders before one step
			step()
			step()
			reorder(0, 2) // one image per row, evenly spaced images: one cross call
			crossCalls(1)
			step()
			reorder(1, 0) // images in falling order
			crossCalls(2)
			step()
			if err := tw.Reorder(make([]int, 9)); err == nil {
				t.Errorf("reorder to more rows than started: no error")
			}
			t.Logf("manual: %d steps, worst relative difference %.3g, cache capacity %d", tw.steps, tw.worst, tw.kv.cap)
			c := m.decChains[chainKey{be, 3, 1}]
			calls := 0
			for _, sg := range c.segs {
				calls += sg.plan.Stats().Calls
			}
			// Per layer: 2 cache writes, 2 residual copies, the self- and
			// the cross-attention (one call per run of rows of an image
			// unless the runs are regular).
			t.Logf("one step of 3 rows: %d plans, %d plan calls + %d direct calls or more (+ reorder copies)", len(c.segs), calls, 6*tw.kv.layers)
		})
	}
}

func argmaxF32(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// BenchmarkGreedy20 is greedy decoding of 20 forced new tokens for the four
// golden images (batch 4) on the CPU backend, with the KV cache
// (GenerateCaptions' stepper) and with the recompute reference. The image
// states are computed once outside the loop.
func BenchmarkGreedy20(b *testing.B) {
	f, err := safetensors.Open(filepath.Join(tinyDir, "golden.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pixels, err := f.Float32("pixel_values")
	if err != nil {
		b.Fatal(err)
	}
	be := cpu.New()
	defer be.Close()
	m := loadTiny(b, "tiny-captioning", be)
	images, err := m.ImageStates(be, pixels, 4)
	if err != nil {
		b.Fatal(err)
	}
	cfg := m.CaptionConfig()
	cfg.MaxNewTokens, cfg.MinNewTokens = 20, 20
	ps, err := generate.BLIPPrompts(nil, 4, cfg.BosTokenID)
	if err != nil {
		b.Fatal(err)
	}
	warm, err := newKVStepper(m, be, images, 4, 21)
	if err != nil {
		b.Fatal(err)
	}
	defer warm.close()
	for _, name := range []string{"kvcache", "kvcache_warm", "recompute"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				var s generate.Stepper
				var done func()
				switch name {
				case "kvcache_warm": // plans compiled by an earlier run
					s, done = warm, func() {}
				case "kvcache":
					kv, err := newKVStepper(m, be, images, 4, 21)
					if err != nil {
						b.Fatal(err)
					}
					s, done = kv, kv.close
				default:
					ref := newCrossStepper(m, be, m.imageEncoderStates(images, 4))
					s, done = ref, ref.close
				}
				if _, err := generate.Generate(s, ps, cfg); err != nil {
					b.Fatal(err)
				}
				done()
			}
		})
	}
}

// tinyCaptionImages opens bc's backend, the tiny captioning model on it
// and the image states of the four golden images.
func tinyCaptionImages(t *testing.T, bc backendCase, pixels []float32) (gpu.Backend, *Model, []float32) {
	t.Helper()
	be := bc.open(t)
	m := loadTiny(t, "tiny-captioning", be)
	images, err := m.ImageStates(be, pixels, 4)
	if err != nil {
		t.Fatal(err)
	}
	return be, m, images
}

// TestCaptionsAfterWeightWrite changes layer 0's query, key and value
// weights of a model that keeps fp16 weight copies and has already
// captioned: the next captions must be those of a model loaded with the
// new weights, whose 16-bit copy the plans and the cached decoder's
// projections outside them (qkvCalls) read refreshed.
func TestCaptionsAfterWeightWrite(t *testing.T) {
	gold := openGolden(t)
	pixels := gold.f32("pixel_values")
	be := cpu.New()
	defer be.Close()
	captions := func(m *Model) [][]int32 {
		cfg := m.CaptionConfig()
		cfg.NumBeams = 1
		out, err := m.GenerateCaptions(be, pixels, 4, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var ids [][]int32
		for i := range out.Sequences {
			ids = append(ids, out.Sequences[i][:out.Lengths[i]])
		}
		return ids
	}
	// change scales layer 0's query, key and value weights of m by 3.
	change := func(m *Model) {
		a := &m.TextDecoder.Bert.Layers[0].Attention
		for _, w := range []*Linear{&a.Query, &a.Key, &a.Value} {
			v := make([]float32, w.Weight.Value().Len)
			if err := w.Weight.Read(v); err != nil {
				t.Fatal(err)
			}
			for i := range v {
				v[i] *= 3
			}
			if err := w.Weight.Write(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := loadTiny(t, "tiny-captioning", be)
	if err := m.SetPrecision(gpu.F16); err != nil {
		t.Fatal(err)
	}
	before := captions(m)
	change(m)
	after := captions(m)

	fresh := loadTiny(t, "tiny-captioning", be)
	change(fresh)
	if err := fresh.SetPrecision(gpu.F16); err != nil {
		t.Fatal(err)
	}
	want := captions(fresh)
	same := true
	for i := range want {
		if !equalIDs(after[i], want[i]) {
			t.Errorf("image %d after the write: %v, a model loaded with the new weights: %v", i, after[i], want[i])
		}
		same = same && equalIDs(before[i], want[i])
	}
	if same {
		t.Error("the new weights caption as the old did: the test shows nothing")
	}
}
