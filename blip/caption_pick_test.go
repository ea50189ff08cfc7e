package blip

import (
	"math"
	"slices"
	"testing"

	"blip/blip/generate"
)

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
