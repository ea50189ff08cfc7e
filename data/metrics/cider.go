package metrics

import "math"

// CiderN and CiderSigma are the parameters of pycocoevalcap's Cider():
// 1..4-grams and a Gaussian length penalty with standard deviation 6.
const (
	CiderN     = 4
	CiderSigma = 6.0
)

// CiderScore holds corpus and per-item CIDEr.
type CiderScore struct {
	// Corpus is the mean of the per-item scores.
	Corpus float64
	// PerItem is each id's score.
	PerItem map[string]float64
}

// Cider returns the corpus CIDEr of the candidates (exactly one
// pre-tokenised caption per id) against the references, as pycocoevalcap's
// Cider().compute_score (the score COCOEvalCap reports as "CIDEr"; its
// formula is CIDEr-D's, see CiderScores).
func Cider(cands, refs map[string][]string) (float64, error) {
	s, err := CiderScores(cands, refs)
	if err != nil {
		return 0, err
	}
	return s.Corpus, nil
}

// ciderVec is counts2vec's result: TF-IDF weights per n-gram order (keys in
// first-appearance order), their L2 norms, and the "length" used by the
// penalty.
type ciderVec struct {
	vec    []map[string]float64
	keys   [][]string
	norm   [CiderN]float64
	length int
}

// CiderScores returns corpus and per-item CIDEr as pycocoevalcap's
// CiderScorer (cider/cider_scorer.py) computes them:
//
//   - document frequency df(g) = number of ids whose references (any of
//     them) contain n-gram g; the log reference length is log(#ids), so the
//     IDF depends on the evaluated set;
//   - each caption is a vector per order n of tf(g) * (log(#ids) -
//     log(max(1, df(g))));
//   - the similarity of candidate c to reference r for order n is
//     sum_g min(c_g, r_g) * r_g / (|c| |r|) (no division when a norm is 0),
//     times exp(-delta^2 / (2 sigma^2)), where delta is the difference of
//     the captions' lengths (the original counts bigrams, i.e. words - 1;
//     the difference is the same as for words whenever both captions are
//     non-empty, and an empty one scores 0 anyway);
//   - an item's score is 10 * mean over n of the similarities summed over
//     its references, divided by the number of references.
func CiderScores(cands, refs map[string][]string) (*CiderScore, error) {
	ids, err := checkInputs(cands, refs)
	if err != nil {
		return nil, err
	}
	// Cook every caption and count document frequencies.
	ctest := make([][]ngrams, len(ids))
	crefs := make([][][]ngrams, len(ids))
	df := map[string]float64{}
	for i, id := range ids {
		ctest[i] = ngramCounts(pySplit(cands[id][0]), CiderN)
		seen := map[string]bool{}
		for _, r := range refs[id] {
			c := ngramCounts(pySplit(r), CiderN)
			crefs[i] = append(crefs[i], c)
			for k, m := range c {
				for _, g := range m.keys {
					// df is keyed by order and n-gram.
					key := string(rune('0'+k)) + g
					if !seen[key] {
						seen[key] = true
						df[key]++
					}
				}
			}
		}
	}
	refLen := math.Log(float64(len(ids)))
	toVec := func(counts []ngrams) ciderVec {
		v := ciderVec{vec: make([]map[string]float64, CiderN), keys: make([][]string, CiderN)}
		for k, m := range counts {
			v.vec[k] = make(map[string]float64, len(m.keys))
			v.keys[k] = m.keys
			for _, g := range m.keys {
				tf := m.counts[g]
				d := math.Log(math.Max(1, df[string(rune('0'+k))+g]))
				w := float64(tf) * (refLen - d)
				v.vec[k][g] = w
				v.norm[k] += w * w
				if k == 1 {
					v.length += tf
				}
			}
		}
		for k := range v.norm {
			v.norm[k] = math.Sqrt(v.norm[k])
		}
		return v
	}
	sim := func(h, r ciderVec) [CiderN]float64 {
		delta := float64(h.length - r.length)
		var val [CiderN]float64
		for k := 0; k < CiderN; k++ {
			for _, g := range h.keys[k] {
				hv, rv := h.vec[k][g], r.vec[k][g]
				val[k] += math.Min(hv, rv) * rv
			}
			if h.norm[k] != 0 && r.norm[k] != 0 {
				val[k] /= h.norm[k] * r.norm[k]
			}
			val[k] *= math.Pow(math.E, -(delta*delta)/(2*CiderSigma*CiderSigma))
		}
		return val
	}
	out := &CiderScore{PerItem: make(map[string]float64, len(ids))}
	sum := 0.0
	for i, id := range ids {
		h := toVec(ctest[i])
		var score [CiderN]float64
		for _, rc := range crefs[i] {
			v := sim(h, toVec(rc))
			for k := range score {
				score[k] += v[k]
			}
		}
		avg := 0.0
		for _, s := range score {
			avg += s
		}
		avg /= CiderN
		avg /= float64(len(crefs[i]))
		avg *= 10
		out.PerItem[id] = avg
		sum += avg
	}
	out.Corpus = sum / float64(len(ids))
	return out, nil
}
