package blip

import (
	"fmt"
	"math"
	"sort"

	"blip/gpu"
)

// RankedAnswers is the outcome of RankAnswers for one question.
type RankedAnswers struct {
	// Best is the index of the chosen candidate.
	Best int
	// TopK are the candidates kept by first-token probability, most
	// probable first (ties: lower index first), with that probability and
	// the log-likelihood of the whole answer.
	TopK           []int
	FirstProbs     []float32
	LogLikelihoods []float64
}

// RankAnswers answers from a closed list as salesforce/BLIP's rank mode
// (blip_vqa.py rank_answer): candidates are tokenised answers as the
// tokenizer gives them ([CLS] answer [SEP], whose [CLS] becomes [DEC]);
// the decoder's first-step distribution after [DEC] keeps the k candidates
// whose first token is most probable, which are then re-scored by the
// log-likelihood of their whole sequence ([SEP] included, padding not); the
// best one wins. Questions are encoded as AnswerQuestions does (transformers
// conventions: ids unchanged, all question states attended). salesforce
// summed a label-smoothed (0.1) cross-entropy for the re-scoring; this
// uses the plain log-likelihood.
func (m *Model) RankAnswers(be gpu.Backend, pixels []float32, batch int, questions, candidates [][]int32, k int) ([]RankedAnswers, error) {
	if len(questions) != batch {
		return nil, fmt.Errorf("blip: %d questions for %d images", len(questions), batch)
	}
	t := &m.Config.TextConfig
	ids, mask, n, err := PadRows(questions, int32(t.PadTokenID), t.MaxPositionEmbeddings)
	if err != nil {
		return nil, err
	}
	q, err := m.QuestionStates(be, pixels, batch, ids, mask, n)
	if err != nil {
		return nil, err
	}
	return m.RankFrom(be, q, candidates, k)
}

// RankFrom is the decoding half of RankAnswers, for any encoder states.
func (m *Model) RankFrom(be gpu.Backend, enc *EncoderStates, candidates [][]int32, k int) ([]RankedAnswers, error) {
	t := &m.Config.TextConfig
	if len(candidates) == 0 {
		return nil, fmt.Errorf("blip: no candidate answers")
	}
	k = min(max(k, 1), len(candidates))
	answers := make([][]int32, len(candidates))
	for i, c := range candidates {
		if len(c) < 2 {
			return nil, fmt.Errorf("blip: candidate %d has %d ids, need [CLS] answer [SEP]", i, len(c))
		}
		for _, id := range c {
			if id < 0 || int(id) >= t.VocabSize {
				return nil, fmt.Errorf("blip: candidate %d has id %d outside the vocabulary of %d", i, id, t.VocabSize)
			}
		}
		answers[i] = append([]int32{int32(t.BosTokenID)}, c[1:]...)
	}
	aids, amask, la, err := PadRows(answers, int32(t.PadTokenID), t.MaxPositionEmbeddings)
	if err != nil {
		return nil, err
	}
	// First step: p(first answer token | [DEC], question) for every question.
	items := make([]int, enc.Items)
	bos := make([]int32, enc.Items)
	for i := range items {
		items[i], bos[i] = i, int32(t.BosTokenID)
	}
	first, err := m.DecoderLogits(be, enc, items, bos, nil, 1)
	if err != nil {
		return nil, err
	}
	v := t.VocabSize
	out := make([]RankedAnswers, enc.Items)
	var rowItem []int
	var rowIDs []int32
	var rowMask []float32
	for i := range out {
		probs := softmax64(first[i*v : (i+1)*v])
		order := make([]int, len(answers))
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return probs[answers[order[a]][1]] > probs[answers[order[b]][1]] })
		r := &out[i]
		r.TopK = order[:k]
		for _, j := range r.TopK {
			r.FirstProbs = append(r.FirstProbs, float32(probs[answers[j][1]]))
			rowItem = append(rowItem, i)
			rowIDs = append(rowIDs, aids[j*la:(j+1)*la]...)
			rowMask = append(rowMask, amask[j*la:(j+1)*la]...)
		}
	}
	if la < 2 {
		return nil, fmt.Errorf("blip: candidate answers have no tokens after [DEC]")
	}
	logits, err := m.DecoderLogits(be, enc, rowItem, rowIDs, rowMask, la)
	if err != nil {
		return nil, err
	}
	for i := range out {
		r := &out[i]
		best := math.Inf(-1)
		for j := range r.TopK {
			row := i*k + j
			ll := SequenceLogLikelihood(logits[row*la*v:(row+1)*la*v], rowIDs[row*la:(row+1)*la], v, int32(t.PadTokenID))
			r.LogLikelihoods = append(r.LogLikelihoods, ll)
			if ll > best {
				best, r.Best = ll, r.TopK[j]
			}
		}
	}
	return out, nil
}

// SequenceLogLikelihood is sum_j log softmax(logits[j])[ids[j+1]] over the
// positions whose target is not pad: the negated, unsmoothed, summed LM
// loss of a teacher-forced row (logits (t, v), ids (t)).
func SequenceLogLikelihood(logits []float32, ids []int32, v int, pad int32) float64 {
	var sum float64
	for j := 0; j+1 < len(ids); j++ {
		if ids[j+1] == pad {
			continue
		}
		sum += logSoftmaxAt(logits[j*v:(j+1)*v], int(ids[j+1]))
	}
	return sum
}

// softmax64 is a numerically stable softmax in float64.
func softmax64(x []float32) []float64 {
	hi := math.Inf(-1)
	for _, f := range x {
		hi = max(hi, float64(f))
	}
	out := make([]float64, len(x))
	var z float64
	for i, f := range x {
		out[i] = math.Exp(float64(f) - hi)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// logSoftmaxAt is log_softmax(x)[i], computed without exponentiating x[i]
// alone so that very unlikely tokens stay finite.
func logSoftmaxAt(x []float32, i int) float64 {
	hi := math.Inf(-1)
	for _, f := range x {
		hi = max(hi, float64(f))
	}
	var z float64
	for _, f := range x {
		z += math.Exp(float64(f) - hi)
	}
	return float64(x[i]) - hi - math.Log(z)
}
