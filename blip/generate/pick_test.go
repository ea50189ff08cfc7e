package generate

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// pickModel is a funcModel that also picks greedy tokens itself (Picker),
// independently of the host loop: argmax with the banned token at -Inf,
// and the log-softmax there.
type pickModel struct {
	*funcModel
	picks int
}

func (m *pickModel) pick(logits []float32, ban int32) ([]int32, []float32) {
	rows := len(logits) / m.vocab
	toks, logp := make([]int32, rows), make([]float32, rows)
	dst := make([]float32, m.vocab)
	for r := range rows {
		l := append([]float32(nil), logits[r*m.vocab:(r+1)*m.vocab]...)
		if ban >= 0 {
			l[ban] = negInf
		}
		logSoftmax(dst, l)
		toks[r] = int32(argmax(l))
		logp[r] = dst[toks[r]]
	}
	m.picks++
	return toks, logp
}

func (m *pickModel) StartPick(prompts [][]int32, copies int, ban int32) ([]int32, []float32, error) {
	l, err := m.Start(prompts, copies)
	if err != nil {
		return nil, nil, err
	}
	t, p := m.pick(l, ban)
	return t, p, nil
}

func (m *pickModel) StepPick(tokens []int32, ban int32) ([]int32, []float32, error) {
	l, err := m.Step(tokens)
	if err != nil {
		return nil, nil, err
	}
	t, p := m.pick(l, ban)
	return t, p, nil
}

// chunkPickModel also runs chunks of steps (ChunkPicker), feeding each row
// its own picks.
type chunkPickModel struct {
	*pickModel
	chunks, longest int
}

func (m *chunkPickModel) StepPicks(tokens []int32, bans []int32) ([][]int32, [][]float32, error) {
	var toks [][]int32
	var logp [][]float32
	for _, ban := range bans {
		t, l, err := m.StepPick(tokens, ban)
		if err != nil {
			return nil, nil, err
		}
		toks, logp = append(toks, t), append(logp, l)
		tokens = t
	}
	m.chunks++
	m.longest = max(m.longest, len(bans))
	return toks, logp, nil
}

// TestGreedyPick runs greedy search on a Picker and on the same model
// without it (logits read back, processed on the host): the sequences,
// lengths and scores must agree, with min_length banning EOS, rows
// finishing at different steps, and max_length; sampling and the
// repetition penalty must not pick on the stepper.
func TestGreedyPick(t *testing.T) {
	for _, tc := range []struct {
		minLen, maxLen int
		rep            float64
		sample         bool
		picks          bool
	}{{0, 14, 1, false, true}, {6, 14, 1, false, true}, {9, 9, 1, false, true}, {0, 30, 1, false, true},
		{0, 14, 1.3, false, false}, {0, 14, 1, true, false}} {
		cfg := BLIPConfig(10, 1, 0)
		cfg.MaxLength, cfg.MinLength, cfg.RepetitionPenalty = tc.maxLen, tc.minLen, tc.rep
		cfg.DoSample, cfg.Seed = tc.sample, 5
		prompts := [][]int32{{10, 4, 5}, {10, 4, 5}, {10, 7, 8}, {10, 1, 2}}
		host, err := Generate(tableModel(4, 12, 99), prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, chunked := range []bool{false, true} {
			pm := &pickModel{funcModel: tableModel(4, 12, 99)}
			var s Stepper = pm
			cm := &chunkPickModel{pickModel: pm}
			if chunked {
				s = cm
			}
			got, err := Generate(s, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if (pm.picks > 0) != tc.picks || (cm.chunks > 0) != (chunked && tc.picks) {
				t.Errorf("%+v chunked %v: %d picks, %d chunks on the stepper", tc, chunked, pm.picks, cm.chunks)
			}
			// Chunks of several steps come only while EOS is banned
			// (min_length well past the prompt), never where a row may end.
			if wantLong := chunked && tc.picks && tc.minLen > 4; (cm.longest > 1) != wantLong {
				t.Errorf("%+v chunked %v: longest chunk %d steps", tc, chunked, cm.longest)
			}
			checkPicked(t, fmt.Sprintf("%+v chunked %v", tc, chunked), got, host, len(prompts), cfg.MaxLength, tc.maxLen == 30)
		}
	}
}

// checkPicked compares a search on a Picker with the host's.
func checkPicked(t *testing.T, name string, got, host *Output, items, maxLen int, mustEnd bool) {
	t.Helper()
	if !slices.Equal(got.Lengths, host.Lengths) {
		t.Errorf("%s: lengths %v, host %v", name, got.Lengths, host.Lengths)
	}
	ended := false
	for i := range items {
		if !slices.Equal(got.Sequences[i], host.Sequences[i]) || got.Scores[i] != host.Scores[i] {
			t.Errorf("%s item %d: %v (%v), host %v (%v)", name, i, got.Sequences[i], got.Scores[i], host.Sequences[i], host.Scores[i])
		}
		ended = ended || host.Lengths[i] < maxLen
	}
	if mustEnd && !ended {
		t.Errorf("%s: no row ended before max_length: the case does not cover dropping rows", name)
	}
}

// stepperModel picks greedy tokens in chunks (chunkPickModel) and ranks beam candidates
// (Ranker) itself, computing them from its logits independently of the
// search code.
type stepperModel struct {
	*chunkPickModel
	ranks int
}

func (m *stepperModel) top(logits []float32, k int) *Top {
	rows := len(logits) / m.vocab
	k = min(k, m.vocab)
	t := &Top{K: k}
	for r := range rows {
		row := logits[r*m.vocab : (r+1)*m.vocab]
		idx := make([]int, m.vocab)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { // descending, lower index first
			switch {
			case row[a] > row[b]:
				return -1
			case row[a] < row[b]:
				return 1
			}
			return 0
		})
		maxv := row[idx[0]]
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - maxv))
		}
		for _, i := range idx[:k] {
			t.Tokens, t.Logits = append(t.Tokens, int32(i)), append(t.Logits, row[i])
		}
		t.LSE = append(t.LSE, float32(math.Log(sum)))
	}
	m.ranks++
	return t
}

func (m *stepperModel) StartTop(prompts [][]int32, copies, k int) (*Top, error) {
	l, err := m.Start(prompts, copies)
	if err != nil {
		return nil, err
	}
	return m.top(l, k), nil
}

func (m *stepperModel) StepTop(tokens []int32, k int) (*Top, error) {
	l, err := m.Step(tokens)
	if err != nil {
		return nil, err
	}
	return m.top(l, k), nil
}
