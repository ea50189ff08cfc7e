package generate

import (
	"slices"
	"testing"
)

// TestGreedyBatchPadding decodes two items: item 0 ends with EOS after 3
// tokens, item 1 never emits EOS and runs to max_length. Item 0's row is
// padded with PAD, as HF fills finished rows, and leaves the cache.
func TestGreedyBatchPadding(t *testing.T) {
	t1 := tree1()
	m := &funcModel{vocab: 6, f: func(item int, p []int32) []float32 {
		if item == 0 {
			return t1.f(0, p)
		}
		l := make([]float32, 6)
		l[tC] = 1 // always C
		return l
	}}
	cfg := handConfig()
	cfg.MaxLength = 7
	out := run(t, m, cfg, 2)
	checkSeqs(t, out, [][]int32{{5, 2, 2, 1, 0, 0, 0}, {5, 4, 4, 4, 4, 4, 4}}, nil)
	if !slices.Equal(out.Lengths, []int{4, 7}) {
		t.Errorf("lengths %v", out.Lengths)
	}
	if m.steps != 5 || len(m.rows) != 1 {
		t.Errorf("steps %d rows %d: finished rows should leave the cache", m.steps, len(m.rows))
	}
}

// TestGreedyArgmax checks greedy against a direct argmax loop on a random
// table model, with a prompt of several tokens, min_length and the
// repetition penalty.
func TestGreedyArgmax(t *testing.T) {
	for _, tc := range []struct {
		minLen int
		rep    float64
	}{{0, 1}, {6, 1}, {0, 1.3}, {5, 0.7}} {
		m := tableModel(3, 12, 99)
		cfg := BLIPConfig(10, 1, 0)
		cfg.MaxLength, cfg.MinLength, cfg.RepetitionPenalty = 14, tc.minLen, tc.rep
		prompts := [][]int32{{10, 4, 5}, {10, 4, 5}, {10, 7, 8}}
		out, err := Generate(m, prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range prompts {
			seq := append([]int32(nil), p...)
			for len(seq) < cfg.MaxLength {
				l := m.f(i, seq)
				for j, tok := range seq {
					if !slices.Contains(seq[:j], tok) { // once per distinct token
						if l[tok] < 0 {
							l[tok] *= float32(tc.rep)
						} else {
							l[tok] /= float32(tc.rep)
						}
					}
				}
				if len(seq) < tc.minLen {
					l[1] = negInf
				}
				tok := int32(argmax(l))
				seq = append(seq, tok)
				if tok == 1 {
					break
				}
			}
			if got := out.Sequences[i][:out.Lengths[i]]; !slices.Equal(got, seq) {
				t.Errorf("%+v item %d: got %v want %v", tc, i, got, seq)
			}
		}
	}
}

func TestBLIPPrompts(t *testing.T) {
	got, err := BLIPPrompts(nil, 2, 135)
	if err != nil || !slices.Equal(got[0], []int32{135}) || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	// [CLS] a picture of [SEP]: [CLS] becomes [DEC], [SEP] goes.
	got, err = BLIPPrompts([][]int32{{2, 11, 77, 65, 3}}, 1, 135)
	if err != nil || !slices.Equal(got[0], []int32{135, 11, 77, 65}) {
		t.Fatalf("%v %v", got, err)
	}
	// The golden prompt_greedy case passed no [SEP], so "of" was dropped.
	got, _ = BLIPPrompts([][]int32{{2, 11, 77, 65}}, 1, 135)
	if !slices.Equal(got[0], []int32{135, 11, 77}) {
		t.Fatalf("%v", got)
	}
	if _, err := BLIPPrompts([][]int32{{2, 3}, {2, 4, 3}}, 2, 135); err == nil {
		t.Error("ragged prompts accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	m := tree1()
	p := [][]int32{{5}}
	bad := []func(*Config){
		func(c *Config) { c.NumBeams = 0 },
		func(c *Config) { c.NumReturnSequences = 2 },                // greedy
		func(c *Config) { c.NumBeams, c.NumReturnSequences = 2, 3 }, // > beams
		func(c *Config) { c.NumBeams, c.DoSample = 2, true },        // beam sampling
		func(c *Config) { c.DoSample, c.Temperature = true, 0 },     // temperature
		func(c *Config) { c.DoSample, c.TopP = true, 0 },            // top_p
		func(c *Config) { c.RepetitionPenalty = 0 },                 // penalty
		func(c *Config) { c.MaxLength, c.MaxNewTokens = 0, 0 },      // no length
		func(c *Config) { c.EarlyStopping = 7 },                     // mode
	}
	for i, f := range bad {
		cfg := handConfig()
		f(&cfg)
		if _, err := Generate(m, p, cfg); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	long := handConfig()
	long.MaxLength = 2
	if _, err := Generate(m, [][]int32{{5, 2}}, long); err == nil {
		t.Error("prompt as long as max_length accepted")
	}
	if _, err := Generate(m, [][]int32{{5}, {5, 2}}, handConfig()); err == nil {
		t.Error("ragged prompts accepted")
	}
}
