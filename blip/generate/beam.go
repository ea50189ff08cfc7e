package generate

import (
	"math"
	"sort"
)

// mask is the -1e9 transformers' vectorised beam search adds (in float32) to
// scores that must not be chosen; it is reproduced literally because the
// masked values still take part in top-k selections.
const mask = float32(-1e9)

// candidate is one (beam, token) continuation of a batch item.
type candidate struct {
	score float32 // accumulated log-probability
	beam  int
	token int32
	flat  int // beam*vocab + token, torch.topk's index, for tie breaks
}

// hypothesis is a slot of the finished set (HF's sequences/beam_scores).
type hypothesis struct {
	seq      []int32
	score    float32
	finished bool
}

// beamItem is the state of one input item.
type beamItem struct {
	running   [][]int32 // num_beams sequences
	runScores []float32 // HF running_beam_scores, masks included
	done      []hypothesis
	improving bool // HF is_early_stop_heuristic_unsatisfied
}

// beamSearch follows transformers' _beam_search (the vectorised version of
// 4.50+ / 5.x) for one input item at a time: log_softmax, processors on the
// log-probs, 2*num_beams best continuations over all beams, finished
// candidates among the top num_beams scored with the length penalty over
// the generated length (EOS included, prompt excluded) and merged into the
// num_beams best finished hypotheses, the best non-finished num_beams kept
// running, and the early-stopping heuristic. Items whose finished set can no
// longer change are dropped from the cache (HF keeps computing them and
// masks their updates, which gives the same result).
func beamSearch(s Stepper, prompts [][]int32, cfg *Config) (*Output, error) {
	k := cfg.NumBeams
	promptLen := len(prompts[0])
	maxLen, minLen := cfg.lengths(promptLen)
	proc := newProcessors(cfg, minLen)
	keep := 2 * k // max(2, 1 + #eos) * num_beams with one EOS id

	items := make([]*beamItem, len(prompts))
	for b, p := range prompts {
		it := &beamItem{improving: true}
		for j := range k {
			it.running = append(it.running, append([]int32(nil), p...))
			sc := float32(0)
			if j > 0 {
				// Only beam 0 may expand at the first step.
				sc = mask
			}
			it.runScores = append(it.runScores, sc)
			it.done = append(it.done, hypothesis{seq: append([]int32(nil), p...), score: mask})
		}
		items[b] = it
	}
	active := make([]int, len(items)) // active[pos]: item at cache rows pos*k..
	for i := range active {
		active[i] = i
	}

	// On a Ranker (and without a repetition penalty, which reads every
	// logit) each row's keep+1 best tokens are enough: the step's keep
	// best continuations take at most keep from one row, and one of the
	// row's best may be an EOS that min_length bans.
	ranker, ranked := s.(Ranker)
	ranked = ranked && proc.repetition == 1
	var logits []float32
	var tops *Top
	var err error
	if ranked {
		tops, err = ranker.StartTop(expand(prompts, k), k, keep+1)
	} else {
		logits, err = s.Start(expand(prompts, k), k)
	}
	if err != nil {
		return nil, err
	}
	curLen := promptLen
	var logp []float32
	for {
		rows := len(active) * k
		vocab := 0
		if ranked {
			if err := tops.check(rows); err != nil {
				return nil, err
			}
		} else if vocab, err = checkLogits(logits, rows); err != nil {
			return nil, err
		}
		if cap(logp) < vocab {
			logp = make([]float32, vocab)
		}
		logp = logp[:vocab]
		atMax := curLen+1 >= maxLen
		parents := make([][]int, len(active))
		for pos, b := range active {
			it := items[b]
			top := make([]candidate, 0, keep+1)
			for j := range k {
				r := pos*k + j
				if ranked {
					// The host path's log-softmax and EOS ban, on the
					// row's best tokens only.
					ban := proc.eos >= 0 && len(it.running[j]) < proc.minLen
					maxv := tops.Logits[r*tops.K]
					for i := range tops.K {
						tok, lp := tops.Tokens[r*tops.K+i], (tops.Logits[r*tops.K+i]-maxv)-tops.LSE[r]
						if ban && tok == proc.eos {
							lp = negInf
						}
						// flat orders (beam, token) as j*vocab + token does.
						c := candidate{score: lp + it.runScores[j], beam: j, token: tok, flat: j<<32 + int(tok)}
						top = pushTop(top, c, keep)
					}
					continue
				}
				row := logits[r*vocab : (r+1)*vocab]
				logSoftmax(logp, row)
				proc.apply(logp, it.running[j])
				for v, lp := range logp {
					c := candidate{score: lp + it.runScores[j], beam: j, token: int32(v), flat: j*vocab + v}
					top = pushTop(top, c, keep)
				}
			}
			parents[pos] = it.advance(top, cfg, k, curLen, promptLen, atMax)
		}
		curLen++
		// Early-stopping bookkeeping after the step, as HF does it.
		var next []int32
		var src []int
		var stillActive []int
		for pos, b := range active {
			it := items[b]
			it.improving = it.improving && it.canImprove(cfg, curLen, maxLen, promptLen)
			full := cfg.EarlyStopping == EarlyStopTrue && it.allFinished()
			if !it.improving || full || atMax {
				continue // its finished set is final: leave the cache
			}
			stillActive = append(stillActive, b)
			for j := range k {
				src = append(src, pos*k+parents[pos][j])
				next = append(next, it.running[j][curLen-1])
			}
		}
		if len(stillActive) == 0 {
			break
		}
		if err := s.Reorder(src); err != nil {
			return nil, err
		}
		active = stillActive
		if ranked {
			tops, err = ranker.StepTop(next, keep+1)
		} else {
			logits, err = s.Step(next)
		}
		if err != nil {
			return nil, err
		}
	}

	out := &Output{}
	for _, it := range items {
		for j := range cfg.NumReturnSequences {
			out.Sequences = append(out.Sequences, it.done[j].seq)
			out.Scores = append(out.Scores, it.done[j].score)
		}
	}
	out.pad(cfg.PadTokenID)
	return out, nil
}

// pushTop inserts c into top, kept sorted by descending score (ties: lower
// flat index first) and at most n long.
func pushTop(top []candidate, c candidate, n int) []candidate {
	if len(top) == n {
		last := top[n-1]
		if !(c.score > last.score || (c.score == last.score && c.flat < last.flat)) {
			return top
		}
		top = top[:n-1]
	}
	i := sort.Search(len(top), func(i int) bool {
		t := top[i]
		return c.score > t.score || (c.score == t.score && c.flat < t.flat)
	})
	top = append(top, candidate{})
	copy(top[i+1:], top[i:])
	top[i] = c
	return top
}

// advance applies one step's 2*num_beams sorted candidates: it picks the
// next running beams and merges just-finished candidates into the finished
// set. It returns, per new running beam, the old beam it extends.
func (it *beamItem) advance(top []candidate, cfg *Config, k, curLen, promptLen int, atMax bool) []int {
	type scored struct {
		candidate
		adj  float32
		rank int
		hit  bool
	}
	cands := make([]scored, len(top))
	for i, c := range top {
		// Stopping criteria on the extended sequence: max length or EOS.
		hit := atMax || c.token == cfg.EosTokenID
		adj := c.score
		if hit {
			adj += mask
		}
		cands[i] = scored{c, adj, i, hit}
	}

	// Finished set first: it reads the flags from before this step.
	full := cfg.EarlyStopping == EarlyStopTrue && it.allFinished()
	penalty := float32(math.Pow(float64(curLen+1-promptLen), cfg.LengthPenalty))
	type slot struct {
		h     hypothesis
		order int
	}
	merged := make([]slot, 0, len(it.done)+len(cands))
	for i, h := range it.done {
		merged = append(merged, slot{h, i})
	}
	for i, c := range cands {
		justFinished := c.hit && i < k
		sc := c.score / penalty
		if full {
			sc += mask
		}
		if !it.improving {
			sc += mask
		}
		if !justFinished {
			sc += mask
		}
		var seq []int32
		if justFinished {
			seq = extend(it.running[c.beam], c.token)
		}
		merged = append(merged, slot{hypothesis{seq: seq, score: sc, finished: justFinished}, len(it.done) + i})
	}
	sort.SliceStable(merged, func(a, b int) bool { return merged[a].h.score > merged[b].h.score })
	done := make([]hypothesis, k)
	for i := range done {
		h := merged[i].h
		if h.seq == nil {
			// A never-finished candidate outranked real ones (only with -inf
			// scores): HF returns that running sequence, so keep it too.
			c := cands[merged[i].order-len(it.done)]
			h.seq = extend(it.running[c.beam], c.token)
		}
		done[i] = h
	}

	// Next running beams: the best k candidates that did not stop.
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].adj > cands[b].adj })
	running := make([][]int32, k)
	scores := make([]float32, k)
	parents := make([]int, k)
	for j := range k {
		c := cands[j]
		running[j] = extend(it.running[c.beam], c.token)
		scores[j] = c.adj
		parents[j] = c.beam
	}
	it.done, it.running, it.runScores = done, running, scores
	return parents
}

// canImprove is HF's _check_early_stop_heuristic for one item at the new
// current length: can the best running beam still beat a finished slot?
func (it *beamItem) canImprove(cfg *Config, curLen, maxLen, promptLen int) bool {
	hypLen := curLen - promptLen
	if cfg.EarlyStopping == EarlyStopNever && cfg.LengthPenalty > 0 {
		hypLen = maxLen - promptLen
	}
	best := it.runScores[0] / float32(math.Pow(float64(hypLen), cfg.LengthPenalty))
	worst := it.done[0].score
	for _, h := range it.done {
		worst = min(worst, h.score)
	}
	for _, h := range it.done {
		w := mask
		if h.finished {
			w = worst
		}
		if best > w {
			return true
		}
	}
	return false
}

func (it *beamItem) allFinished() bool {
	for _, h := range it.done {
		if !h.finished {
			return false
		}
	}
	return true
}

func extend(seq []int32, tok int32) []int32 {
	out := make([]int32, len(seq)+1)
	copy(out, seq)
	out[len(seq)] = tok
	return out
}
