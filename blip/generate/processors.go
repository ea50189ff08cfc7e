package generate

import (
	"math"
	"sort"
)

var negInf = float32(math.Inf(-1))

// processors is the logits-processor list that transformers builds in
// _get_logits_processor, restricted to what Config exposes, in HF's order:
// repetition penalty, min length, then (sampling only) temperature, top-k,
// top-p.
type processors struct {
	repetition float32
	minLen     int
	eos        int32
	sample     bool
	temp       float32
	topK       int
	topP       float64
	minKeep    int
}

func newProcessors(c *Config, minLen int) *processors {
	return &processors{
		repetition: float32(c.RepetitionPenalty),
		minLen:     minLen,
		eos:        c.EosTokenID,
		sample:     c.DoSample,
		temp:       float32(c.Temperature),
		topK:       c.TopK,
		topP:       c.TopP,
		minKeep:    1, // HF uses 2 only for beam sampling, which is not implemented
	}
}

// apply processes one row's scores in place; seq is the row so far, prompt
// included.
func (p *processors) apply(scores []float32, seq []int32) {
	if p.repetition != 1 {
		repetitionPenalty(scores, seq, p.repetition)
	}
	if p.eos >= 0 && int(p.eos) < len(scores) && len(seq) < p.minLen {
		scores[p.eos] = negInf
	}
	if !p.sample {
		return
	}
	if p.temp != 1 {
		for i := range scores {
			scores[i] /= p.temp
		}
	}
	if p.topK > 0 {
		topK(scores, max(p.topK, p.minKeep))
	}
	if p.topP < 1 {
		topP(scores, p.topP, p.minKeep)
	}
}

// repetitionPenalty is RepetitionPenaltyLogitsProcessor: each distinct token
// of seq has its score divided by penalty when >= 0 and multiplied when < 0,
// once however often it occurs (HF gathers then scatters the same value).
func repetitionPenalty(scores []float32, seq []int32, penalty float32) {
	seen := make(map[int32]bool, len(seq))
	for _, t := range seq {
		if seen[t] || t < 0 || int(t) >= len(scores) {
			continue
		}
		seen[t] = true
		if s := scores[t]; s < 0 {
			scores[t] = s * penalty
		} else {
			scores[t] = s / penalty
		}
	}
}

// topK is TopKLogitsWarper: everything strictly below the k-th largest score
// becomes -inf, so ties with the k-th are kept.
func topK(scores []float32, k int) {
	if k >= len(scores) {
		return
	}
	sorted := append([]float32(nil), scores...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] > sorted[j] })
	kth := sorted[k-1]
	for i, s := range scores {
		if s < kth {
			scores[i] = negInf
		}
	}
}

// topP is TopPLogitsWarper: scores are sorted ascending, and a token is
// removed while the cumulative probability up to and including it is
// <= 1-p, which keeps the smallest high-probability set whose mass is >= p;
// the top minKeep tokens always stay. Probabilities and the cumulative sum
// are float32 as in torch.
func topP(scores []float32, p float64, minKeep int) {
	n := len(scores)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	sorted := make([]float32, n)
	for i, j := range idx {
		sorted[i] = scores[j]
	}
	probs := softmax64(sorted)
	limit := float32(1 - p)
	var cum float32
	for i := 0; i < n-minKeep; i++ {
		cum += float32(probs[i])
		if cum > limit {
			break
		}
		scores[idx[i]] = negInf
	}
}
