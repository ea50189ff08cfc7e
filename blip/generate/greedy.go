package generate

import (
	"fmt"
	"math/rand/v2"
)

// sampleOrGreedy is transformers' _sample loop: process the scores, take the
// argmax (greedy) or draw from softmax (sampling), stop a row at EOS or
// max_length. HF keeps feeding PAD to finished rows until all are done; the
// result is the same if those rows are dropped from the cache instead, so
// they are, and their padding is added at the end.
func sampleOrGreedy(s Stepper, prompts [][]int32, cfg *Config) (*Output, error) {
	copies := cfg.NumReturnSequences
	seqs := expand(prompts, copies)
	rows := len(seqs)
	promptLen := len(prompts[0])
	maxLen, minLen := cfg.lengths(promptLen)
	proc := newProcessors(cfg, minLen)
	if pk, ok := s.(Picker); ok && !cfg.DoSample && proc.repetition == 1 {
		return greedyPick(pk, seqs, copies, maxLen, cfg, proc)
	}

	var rngs []*rand.Rand
	if cfg.DoSample {
		rngs = make([]*rand.Rand, rows)
		for i := range rngs {
			// One stream per expanded row keeps draws independent of which
			// other rows are still alive.
			rngs[i] = rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		}
	}

	scores := make([]float32, rows)
	live := make([]int, rows) // live[k]: output row held by cache row k
	for i := range live {
		live[i] = i
	}
	logits, err := s.Start(seqs, copies)
	if err != nil {
		return nil, err
	}
	logp := []float32(nil)
	for {
		vocab, err := checkLogits(logits, len(live))
		if err != nil {
			return nil, err
		}
		if cap(logp) < vocab {
			logp = make([]float32, vocab)
		}
		logp = logp[:vocab]
		next := make([]int32, len(live))
		keep := make([]int, 0, len(live))
		for k, r := range live {
			row := logits[k*vocab : (k+1)*vocab]
			proc.apply(row, seqs[r])
			var tok int
			if cfg.DoSample {
				tok, err = draw(row, rngs[r])
				if err != nil {
					return nil, fmt.Errorf("generate: row %d: %w", r, err)
				}
			} else {
				tok = argmax(row)
			}
			logSoftmax(logp, row)
			scores[r] += logp[tok]
			seqs[r] = append(seqs[r], int32(tok))
			next[k] = int32(tok)
			// Stopping criteria: max length (counted with the prompt) or EOS.
			if len(seqs[r]) < maxLen && int32(tok) != cfg.EosTokenID {
				keep = append(keep, k)
			}
		}
		if len(keep) == 0 {
			break
		}
		if live, next, err = dropFinished(s, live, next, keep); err != nil {
			return nil, err
		}
		if logits, err = s.Step(next); err != nil {
			return nil, err
		}
	}
	out := &Output{Sequences: seqs, Scores: scores}
	out.pad(cfg.PadTokenID)
	return out, nil
}

// dropFinished keeps the cache rows keep (those not finished) of live
// (cache row -> output row) and their next tokens, reordering the stepper
// when some rows leave.
func dropFinished(s Stepper, live []int, next []int32, keep []int) ([]int, []int32, error) {
	if len(keep) == len(live) {
		return live, next, nil
	}
	if err := s.Reorder(keep); err != nil {
		return nil, nil, err
	}
	nl := make([]int, len(keep))
	nt := make([]int32, len(keep))
	for i, k := range keep {
		nl[i], nt[i] = live[k], next[k]
	}
	return nl, nt, nil
}

// draw samples a token from softmax(scores), torch.multinomial's role.
func draw(scores []float32, rng *rand.Rand) (int, error) {
	p := softmax64(scores)
	u := rng.Float64()
	var cum float64
	last := -1
	for i, v := range p {
		if v <= 0 {
			continue
		}
		last = i
		cum += v
		if u < cum {
			return i, nil
		}
	}
	if last < 0 {
		return 0, fmt.Errorf("all tokens have zero probability")
	}
	return last, nil // rounding left u just above the total
}

// pickChunk is the most greedy steps a ChunkPicker runs per call.
const pickChunk = 8

// greedyPick is greedy search on a Picker: the same tokens and scores as
// the loop above (the processors that greedy search runs without a
// repetition penalty come down to banning EOS below the minimum length,
// which holds for all rows at once: they have one length), with the argmax
// and log-softmax done by the stepper.
func greedyPick(s Picker, seqs [][]int32, copies, maxLen int, cfg *Config, proc *processors) (*Output, error) {
	rows := len(seqs)
	scores := make([]float32, rows)
	live := make([]int, rows) // live[k]: output row held by cache row k
	for i := range live {
		live[i] = i
	}
	// banAt is the token banned at the step that appends position cur
	// (all rows have one length): EOS below min_length, else none (-1).
	banAt := func(cur int) int32 {
		if proc.eos >= 0 && cur < proc.minLen {
			return proc.eos
		}
		return -1
	}
	// A ChunkPicker runs up to pickChunk steps per call while no row can
	// end (below).
	chunker, chunked := s.(ChunkPicker)
	t0, l0, err := s.StartPick(seqs, copies, banAt(len(seqs[0])))
	toks, logp := [][]int32{t0}, [][]float32{l0}
	for {
		if err != nil {
			return nil, err
		}
		done := make([]bool, len(live))
		for i := range toks {
			if len(toks[i]) != len(live) || len(logp[i]) != len(live) {
				return nil, fmt.Errorf("generate: stepper picked %d tokens and %d scores for %d rows", len(toks[i]), len(logp[i]), len(live))
			}
			for k, r := range live {
				if done[k] {
					continue
				}
				tok := toks[i][k]
				scores[r] += logp[i][k]
				seqs[r] = append(seqs[r], tok)
				done[k] = len(seqs[r]) >= maxLen || tok == cfg.EosTokenID
			}
		}
		keep := make([]int, 0, len(live))
		for k := range live {
			if !done[k] {
				keep = append(keep, k)
			}
		}
		if len(keep) == 0 {
			break
		}
		next := toks[len(toks)-1]
		if live, next, err = dropFinished(s, live, next, keep); err != nil {
			return nil, err
		}
		// A chunk runs on while no row can end: EOS banned (min_length)
		// or absent, max_length ahead. The step that may end one closes
		// it, so no step is computed for rows already finished.
		cur := len(seqs[live[0]])
		mayEnd := func(i int) bool { return proc.eos >= 0 && banAt(cur+i) < 0 || cur+i+1 >= maxLen }
		n := 1
		if chunked {
			for limit := min(pickChunk, maxLen-cur); n < limit && !mayEnd(n-1); {
				n++
			}
		}
		bans := make([]int32, n)
		for i := range bans {
			bans[i] = banAt(cur + i)
		}
		if chunked {
			toks, logp, err = chunker.StepPicks(next, bans)
		} else {
			var t1 []int32
			var l1 []float32
			t1, l1, err = s.StepPick(next, bans[0])
			toks, logp = [][]int32{t1}, [][]float32{l1}
		}
		if err == nil && len(toks) != n {
			err = fmt.Errorf("generate: stepper ran %d steps of %d", len(toks), n)
		}
	}
	out := &Output{Sequences: seqs, Scores: scores}
	out.pad(cfg.PadTokenID)
	return out, nil
}
