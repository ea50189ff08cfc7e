package generate

import (
	"math"
	"slices"
	"testing"
)

func TestRepetitionPenalty(t *testing.T) {
	scores := []float32{2, -2, 0, 1, -1}
	// Token 1 appears twice but is penalised once; token 2 scores 0, which
	// HF divides (no change).
	repetitionPenalty(scores, []int32{0, 1, 1, 2}, 2)
	if want := []float32{1, -4, 0, 1, -1}; !slices.Equal(scores, want) {
		t.Errorf("got %v want %v", scores, want)
	}
	scores = []float32{2, -2}
	repetitionPenalty(scores, []int32{0, 1}, 0.5) // < 1 rewards repeats
	if want := []float32{4, -1}; !slices.Equal(scores, want) {
		t.Errorf("got %v want %v", scores, want)
	}
}

func logits(ps ...float64) []float32 {
	l := make([]float32, len(ps))
	for i, p := range ps {
		l[i] = float32(math.Log(p))
	}
	return l
}

func kept(scores []float32) []int {
	var k []int
	for i, s := range scores {
		if !math.IsInf(float64(s), -1) {
			k = append(k, i)
		}
	}
	return k
}

func TestTopP(t *testing.T) {
	// Probabilities 0.3, 0.05, 0.5, 0.15 (sorted: .5 .3 .15 .05).
	for _, c := range []struct {
		p    float64
		keep int
		want []int
	}{
		{0.75, 1, []int{0, 2}},       // .5+.3 = .8 >= .75
		{0.85, 1, []int{0, 2, 3}},    // needs .15 too
		{0.4, 1, []int{2}},           // .5 alone
		{0.01, 1, []int{2}},          // at least the top token
		{0.01, 2, []int{0, 2}},       // min_tokens_to_keep
		{0.99, 1, []int{0, 1, 2, 3}}, // everything
	} {
		s := logits(.3, .05, .5, .15)
		topP(s, c.p, c.keep)
		if got := kept(s); !slices.Equal(got, c.want) {
			t.Errorf("top_p %v keep %d: kept %v want %v", c.p, c.keep, got, c.want)
		}
		for _, i := range c.want {
			if s[i] != logits(.3, .05, .5, .15)[i] {
				t.Errorf("kept score %d changed", i)
			}
		}
	}
}

func TestTopK(t *testing.T) {
	s := []float32{1, 5, 3, 3, 0}
	topK(s, 2) // ties with the 2nd largest are kept, as HF's `<` test does
	if got := kept(s); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("kept %v", got)
	}
	s = []float32{1, 5, 3}
	topK(s, 10)
	if got := kept(s); len(got) != 3 {
		t.Errorf("kept %v", got)
	}
}

func TestProcessorOrder(t *testing.T) {
	// Repetition penalty runs before temperature: 2 -> 1 (penalty 2) -> 2
	// (temperature 0.5); min_length masks EOS (id 1); top-k 2 then drops
	// the smallest.
	c := DefaultConfig()
	c.DoSample, c.RepetitionPenalty, c.Temperature, c.TopK, c.EosTokenID, c.MinLength = true, 2, 0.5, 2, 1, 5
	p := newProcessors(&c, 5)
	s := []float32{2, 9, 1.5, -1}
	p.apply(s, []int32{0})
	if want := []float32{2, negInf, 3, negInf}; !slices.Equal(s, want) {
		t.Errorf("got %v want %v", s, want)
	}
	// Without sampling the warpers are off even when set.
	c.DoSample = false
	p = newProcessors(&c, 0)
	s = []float32{2, 9, 1.5, -1}
	p.apply(s, []int32{0})
	if want := []float32{1, 9, 1.5, -1}; !slices.Equal(s, want) {
		t.Errorf("got %v want %v", s, want)
	}
}

func TestLogSoftmax(t *testing.T) {
	x := []float32{1, 2, 3, negInf}
	d := make([]float32, 4)
	logSoftmax(d, x)
	var sum float64
	for _, v := range d {
		sum += math.Exp(float64(v))
	}
	if math.Abs(sum-1) > 1e-6 || !math.IsInf(float64(d[3]), -1) || d[2] <= d[1] {
		t.Errorf("log_softmax %v", d)
	}
}
