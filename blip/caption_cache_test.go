package blip

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
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
				if got := len(tw.kv.crossCalls(0, 1, v, v)); got != want {
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

// hostStepper hides the KV stepper's Picker: greedy search then reads back
// the logits and picks on the host.
type hostStepper struct{ generate.Stepper }

// stepPicker hides the KV stepper's chunks (generate.ChunkPicker): greedy
// search then waits for every token.
type stepPicker struct{ s *kvStepper }

func (p stepPicker) Start(prompts [][]int32, copies int) ([]float32, error) {
	return p.s.Start(prompts, copies)
}
func (p stepPicker) Step(tokens []int32) ([]float32, error) { return p.s.Step(tokens) }
func (p stepPicker) Reorder(src []int) error                { return p.s.Reorder(src) }
func (p stepPicker) StartPick(prompts [][]int32, copies int, ban int32) ([]int32, []float32, error) {
	return p.s.StartPick(prompts, copies, ban)
}
func (p stepPicker) StepPick(tokens []int32, ban int32) ([]int32, []float32, error) {
	return p.s.StepPick(tokens, ban)
}

// TestKVStepperPick checks greedy search through the stepper's own picks
// (ArgMax and CrossEntropy on the backend, generate.Picker) and beam search
// through its ranking (TopK, generate.Ranker) against the same searches on
// the logits read back: identical tokens and lengths, and scores within
// float32 rounding, with EOS banned below min_length, rows ending at
// different steps and a prompt.
func TestKVStepperPick(t *testing.T) {
	gold := openGolden(t)
	pixels := gold.f32("pixel_values")
	want := readGoldenCaptions(t)
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be, m, images := tinyCaptionImages(t, bc, pixels)
			// The tiny model never emits its EOS; a token it does emit
			// (row 0's third) stands in, so that rows end at different
			// steps and min_length has something to ban.
			var eos int32
			{
				cfg := m.CaptionConfig()
				ps, err := generate.BLIPPrompts(nil, 4, cfg.BosTokenID)
				if err != nil {
					t.Fatal(err)
				}
				s, err := newKVStepper(m, be, images, 4, 8)
				if err != nil {
					t.Fatal(err)
				}
				out, err := generate.Generate(hostStepper{s}, ps, cfg)
				s.close()
				if err != nil {
					t.Fatal(err)
				}
				eos = out.Sequences[0][len(ps[0])+2]
			}
			for _, c := range []struct {
				name    string
				cfg     func(*generate.Config)
				prompts [][]int32
			}{
				{"greedy", func(c *generate.Config) {}, nil},
				{"eos", func(c *generate.Config) { c.EosTokenID = eos }, nil},
				{"eos_min_len6", func(c *generate.Config) { c.EosTokenID, c.MinLength, c.MaxLength = eos, 6, 16 }, nil},
				{"max_new30", func(c *generate.Config) { c.MaxNewTokens = 30 }, nil},
				{"prompt_eos", func(c *generate.Config) { c.EosTokenID, c.MaxLength = eos, 14 }, want.PromptGreedy.PromptIDs},
				// Beam search ranks on the stepper (generate.Ranker).
				{"beam3", func(c *generate.Config) { c.NumBeams, c.MaxLength = 3, 12 }, nil},
				{"beam3_eos_min_len6", func(c *generate.Config) { c.NumBeams, c.EosTokenID, c.MinLength, c.MaxLength = 3, eos, 6, 14 }, nil},
				{"beam4_return2_eos", func(c *generate.Config) {
					c.NumBeams, c.NumReturnSequences, c.EosTokenID, c.MaxLength = 4, 2, eos, 12
				}, nil},
			} {
				cfg := m.CaptionConfig()
				c.cfg(&cfg)
				ps, err := generate.BLIPPrompts(c.prompts, 4, cfg.BosTokenID)
				if err != nil {
					t.Fatal(err)
				}
				run := func(mode string) *generate.Output {
					s, err := newKVStepper(m, be, images, 4, 8)
					if err != nil {
						t.Fatal(err)
					}
					defer s.close()
					st := map[string]generate.Stepper{"host": hostStepper{s}, "chunks": s, "steps": stepPicker{s}}[mode]
					out, err := generate.Generate(st, ps, cfg)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					return out
				}
				host := run("host")
				for _, mode := range []string{"chunks", "steps"} {
					compareOutputs(t, c.name+"/"+mode, run(mode), host)
				}
				ended := 0
				for i := range host.Sequences {
					if host.Lengths[i] < len(host.Sequences[i]) {
						ended++
					}
				}
				t.Logf("%s: %d of %d rows ended before the others", c.name, ended, len(host.Sequences))
				if (c.name == "eos" || c.name == "beam4_return2_eos") && ended == 0 {
					t.Errorf("eos: no row ended early: the case does not cover dropping rows")
				}
			}
		})
	}
}

// compareOutputs checks a search on the stepper's own picks or ranking
// against the host's: the same tokens and lengths, scores within float32
// rounding.
func compareOutputs(t *testing.T, name string, got, host *generate.Output) {
	t.Helper()
	for i := range host.Sequences {
		if !slices.Equal(got.Sequences[i], host.Sequences[i]) || got.Lengths[i] != host.Lengths[i] {
			t.Errorf("%s row %d: %v, host %v", name, i, got.Sequences[i], host.Sequences[i])
		}
		if d := math.Abs(float64(got.Scores[i] - host.Scores[i])); d > 1e-5*math.Max(1, math.Abs(float64(host.Scores[i]))) {
			t.Errorf("%s row %d: score %v, host %v", name, i, got.Scores[i], host.Scores[i])
		}
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
