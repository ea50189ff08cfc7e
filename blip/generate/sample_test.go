package generate

import (
	"math"
	"slices"
	"testing"
)

// fixedModel always predicts the same distribution.
func fixedModel(ps ...float64) *funcModel {
	l := logits(ps...)
	return &funcModel{vocab: len(ps), f: func(int, []int32) []float32 { return slices.Clone(l) }}
}

func sampleConfig(seed uint64) Config {
	c := BLIPConfig(0, -1, 0)
	c.DoSample, c.Seed, c.TopK, c.MaxNewTokens = true, seed, 0, 1
	return c
}

func TestSamplingDeterministic(t *testing.T) {
	cfg := sampleConfig(42)
	cfg.MaxNewTokens, cfg.NumReturnSequences = 10, 3
	m := tableModel(2, 12, 5)
	a, err := Generate(m, [][]int32{{10}, {10}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(m, [][]int32{{10}, {10}}, cfg)
	if !slices.EqualFunc(a.Sequences, b.Sequences, slices.Equal) {
		t.Errorf("same seed, different samples: %v %v", a.Sequences, b.Sequences)
	}
	if len(a.Sequences) != 6 {
		t.Fatalf("%d rows", len(a.Sequences))
	}
	cfg.Seed = 43
	c, _ := Generate(m, [][]int32{{10}, {10}}, cfg)
	if slices.EqualFunc(a.Sequences, c.Sequences, slices.Equal) {
		t.Errorf("seeds 42 and 43 gave the same samples")
	}
}

// TestSamplingDistribution draws 20000 first tokens from a fixed
// distribution and applies a chi-square test (df 4, 0.1% critical value
// 18.47).
func TestSamplingDistribution(t *testing.T) {
	ps := []float64{.4, .3, .15, .1, .05}
	cfg := sampleConfig(7)
	const n = 20000
	cfg.NumReturnSequences = n
	out, err := Generate(fixedModel(ps...), [][]int32{{0}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]float64, len(ps))
	for _, s := range out.Sequences {
		counts[s[1]]++
	}
	chi := 0.0
	for i, p := range ps {
		e := p * n
		chi += (counts[i] - e) * (counts[i] - e) / e
	}
	if chi > 18.47 {
		t.Errorf("chi-square %.2f, counts %v", chi, counts)
	}

	// With top_p 0.75 only {.4, .3, .15} remain, renormalised; with
	// temperature 0.5 the probabilities go as p^2.
	cfg.TopP = 0.75
	cfg.Temperature = 0.5
	out, _ = Generate(fixedModel(ps...), [][]int32{{0}}, cfg)
	clear(counts)
	for _, s := range out.Sequences {
		counts[s[1]]++
	}
	// Temperature first: p^2 ∝ .16 .09 .0225 .01 .0025 (sum .285) -> .561
	// .316 .079 .035 .009; top_p .75 keeps .561 + .316 = .877.
	want := []float64{.16 / .25, .09 / .25, 0, 0, 0}
	chi = 0
	for i, p := range want {
		if p == 0 {
			if counts[i] != 0 {
				t.Errorf("token %d outside top-p drawn %v times", i, counts[i])
			}
			continue
		}
		e := p * n
		chi += (counts[i] - e) * (counts[i] - e) / e
	}
	if chi > 10.83 { // df 1
		t.Errorf("chi-square %.2f, counts %v", chi, counts)
	}
}

func TestSamplingScores(t *testing.T) {
	cfg := sampleConfig(1)
	out, _ := Generate(fixedModel(.5, .5), [][]int32{{0}}, cfg)
	if math.Abs(float64(out.Scores[0])-math.Log(.5)) > 1e-6 {
		t.Errorf("score %v", out.Scores[0])
	}
}
