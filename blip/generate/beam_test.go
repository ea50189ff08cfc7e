package generate

import (
	"math"
	"slices"
	"testing"
)

// Tokens of the hand-built models: 0 pad, 1 eos, 2 A, 3 B, 4 C, 5 bos.
const (
	tPad, tEos, tA, tB, tC, tBos = 0, 1, 2, 3, 4, 5
)

func handConfig() Config {
	c := BLIPConfig(tBos, tEos, tPad)
	c.MaxLength = 20
	return c
}

// tree1: greedy takes A (0.5) then A (0.35) then EOS; B (0.4) then EOS
// (0.9) has the higher total probability, which beam search finds.
func tree1() *funcModel {
	return treeModel(6, map[string][]float64{
		"5":   {.01, .03, .5, .4, .05, .01},
		"5 2": {.01, .03, .35, .3, .3, .01},
		"5 3": {.01, .9, .04, .03, .01, .01},
	}, []float64{.02, .9, .02, .02, .02, .02})
}

func ln(ps ...float64) float64 {
	s := 0.0
	for _, p := range ps {
		s += math.Log(p)
	}
	return s
}

func run(t *testing.T, m *funcModel, cfg Config, items int) *Output {
	t.Helper()
	prompts, err := BLIPPrompts(nil, items, cfg.BosTokenID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(m, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkSeqs(t *testing.T, got *Output, want [][]int32, scores []float64) {
	t.Helper()
	if len(got.Sequences) != len(want) {
		t.Fatalf("got %d sequences %v, want %d", len(got.Sequences), got.Sequences, len(want))
	}
	for i := range want {
		if !slices.Equal(got.Sequences[i], want[i]) {
			t.Errorf("sequence %d = %v, want %v", i, got.Sequences[i], want[i])
		}
		if scores != nil && math.Abs(float64(got.Scores[i])-scores[i]) > 1e-5 {
			t.Errorf("score %d = %v, want %v", i, got.Scores[i], scores[i])
		}
	}
}

func TestBeamBeatsGreedy(t *testing.T) {
	cfg := handConfig()
	greedy := run(t, tree1(), cfg, 1)
	checkSeqs(t, greedy, [][]int32{{5, 2, 2, 1}}, []float64{ln(.5, .35, .9)})

	cfg.NumBeams, cfg.NumReturnSequences = 2, 2
	beam := run(t, tree1(), cfg, 1)
	// Scores are divided by the generated length, EOS included, prompt not.
	checkSeqs(t, beam, [][]int32{{5, 3, 1, 0}, {5, 2, 2, 1}},
		[]float64{ln(.4, .9) / 2, ln(.5, .35, .9) / 3})
	if !slices.Equal(beam.Lengths, []int{3, 4}) {
		t.Errorf("lengths %v", beam.Lengths)
	}
}

func TestBeamLengthPenalty(t *testing.T) {
	cfg := handConfig()
	cfg.NumBeams, cfg.NumReturnSequences = 2, 2
	// length_penalty 2 favours the longer hypotheses: both 3-token ones
	// (A A EOS, A B EOS) now beat B EOS.
	cfg.LengthPenalty = 2
	checkSeqs(t, run(t, tree1(), cfg, 1), [][]int32{{5, 2, 2, 1}, {5, 2, 3, 1}},
		[]float64{ln(.5, .35, .9) / 9, ln(.5, .3, .9) / 9})
	// length_penalty 0 is the plain sum of log-probabilities.
	cfg.LengthPenalty = 0
	checkSeqs(t, run(t, tree1(), cfg, 1), [][]int32{{5, 3, 1, 0}, {5, 2, 2, 1}},
		[]float64{ln(.4, .9), ln(.5, .35, .9)})
}

func TestBeamMaxLength(t *testing.T) {
	cfg := handConfig()
	cfg.NumBeams, cfg.NumReturnSequences, cfg.MaxLength = 2, 2, 3
	// At max_length every top-num_beams candidate is finished, EOS or not.
	checkSeqs(t, run(t, tree1(), cfg, 1), [][]int32{{5, 3, 1}, {5, 2, 2}},
		[]float64{ln(.4, .9) / 2, ln(.5, .35) / 2})
	cfg.MaxLength, cfg.MaxNewTokens = 100, 2 // max_new_tokens overrides
	checkSeqs(t, run(t, tree1(), cfg, 1), [][]int32{{5, 3, 1}, {5, 2, 2}}, nil)
}

func TestBeamMinLength(t *testing.T) {
	cfg := handConfig()
	cfg.NumBeams, cfg.NumReturnSequences = 2, 2
	for _, minLen := range []int{3, 4, 6} {
		cfg.MinLength = minLen
		out := run(t, tree1(), cfg, 1)
		for i, s := range out.Sequences {
			// EOS is masked while the sequence (prompt included) is
			// shorter than min_length, so it sits at index >= min_length.
			if at := slices.Index(s, tEos); at >= 0 && at < minLen {
				t.Errorf("min_length %d: sequence %d = %v", minLen, i, s)
			}
		}
	}
	cfg.MinLength = 0
	cfg.MinNewTokens = 2 // same as min_length 3 for a 1-token prompt
	out := run(t, tree1(), cfg, 1)
	cfg.MinNewTokens, cfg.MinLength = 0, 3
	checkSeqs(t, out, run(t, tree1(), cfg, 1).Sequences, nil)
}

// tree2 separates the early_stopping modes (num_beams 2, length_penalty 1):
// after step 3 the finished set is full (B EOS, A A EOS) but the running
// A A A scored at the current length still beats A A EOS, and it does
// finish better (A A A EOS).
func tree2() *funcModel {
	return treeModel(6, map[string][]float64{
		"5":       {.01, .03, .5, .4, .05, .01},
		"5 3":     {.01, .9, .04, .03, .01, .01},
		"5 2":     {.02, .03, .33, .31, .3, .01},
		"5 2 2":   {.02, .45, .5, .01, .01, .01},
		"5 2 3":   {.18, .1, .18, .18, .18, .18},
		"5 2 2 2": {.01, .95, .01, .01, .01, .01},
	}, []float64{.02, .9, .02, .02, .02, .02})
}

func TestBeamEarlyStopping(t *testing.T) {
	cases := []struct {
		mode  EarlyStopping
		want  [][]int32
		score []float64
		steps int // Step calls after Start
	}{
		// True: stop as soon as num_beams hypotheses are finished (step 3).
		{EarlyStopTrue, [][]int32{{5, 3, 1, 0}, {5, 2, 2, 1}}, []float64{ln(.4, .9) / 2, ln(.5, .33, .45) / 3}, 2},
		// False: go on while best running / current length beats the worst
		// finished score; A A A EOS arrives at step 4.
		{EarlyStopHeuristic, [][]int32{{5, 3, 1, 0, 0}, {5, 2, 2, 2, 1}}, []float64{ln(.4, .9) / 2, ln(.5, .33, .5, .95) / 4}, 3},
		// never: the running beam is scored at max_length - prompt (19),
		// which keeps the search going two more steps for nothing.
		{EarlyStopNever, [][]int32{{5, 3, 1, 0, 0}, {5, 2, 2, 2, 1}}, []float64{ln(.4, .9) / 2, ln(.5, .33, .5, .95) / 4}, 5},
	}
	for _, c := range cases {
		cfg := handConfig()
		cfg.NumBeams, cfg.NumReturnSequences, cfg.EarlyStopping = 2, 2, c.mode
		m := tree2()
		out := run(t, m, cfg, 1)
		checkSeqs(t, out, c.want, c.score)
		if m.steps != c.steps {
			t.Errorf("early_stopping=%v: %d steps, want %d", c.mode, m.steps, c.steps)
		}
	}
}

// TestBeamBatch runs two items together: each keeps its own beams and
// finished set, and an item that is done leaves the cache.
func TestBeamBatch(t *testing.T) {
	t1, t2 := tree1(), tree2()
	m := &funcModel{vocab: 6, f: func(item int, p []int32) []float32 {
		if item == 0 {
			return t1.f(0, p)
		}
		return t2.f(0, p)
	}}
	cfg := handConfig()
	cfg.NumBeams = 2
	out := run(t, m, cfg, 2)
	// Padding only reaches the longest returned row (HF crops with
	// beam_indices), here 3.
	checkSeqs(t, out, [][]int32{{5, 3, 1}, {5, 3, 1}}, nil)
	if !slices.Equal(out.Lengths, []int{3, 3}) {
		t.Errorf("lengths %v", out.Lengths)
	}
	if m.maxRow != 4 {
		t.Errorf("max rows %d, want 4", m.maxRow)
	}
	// The same items alone give the same answers.
	cfg.NumReturnSequences = 2
	both := run(t, m, cfg, 2)
	one := run(t, tree1(), cfg, 1)
	two := run(t, tree2(), cfg, 1)
	for i := range 2 {
		if !slices.Equal(both.Sequences[i][:both.Lengths[i]], one.Sequences[i][:one.Lengths[i]]) ||
			!slices.Equal(both.Sequences[2+i][:both.Lengths[2+i]], two.Sequences[i][:two.Lengths[i]]) {
			t.Errorf("batched %v differs from alone %v %v", both.Sequences, one.Sequences, two.Sequences)
		}
	}
}
