package metrics

import "math"

// BleuN is the highest n-gram order of Bleu (pycocoevalcap's Bleu(4)).
const BleuN = 4

// BleuScore holds corpus and per-item BLEU-1..4.
type BleuScore struct {
	// Corpus is BLEU-1..4 over the whole set: clipped n-gram matches and
	// candidate n-grams summed over items, one brevity penalty from the
	// summed candidate and "closest" reference lengths.
	Corpus [BleuN]float64
	// PerItem is BLEU-1..4 of each id on its own.
	PerItem map[string][BleuN]float64
	// TestLen and RefLen are the summed candidate and effective reference
	// lengths (in words) behind the corpus brevity penalty.
	TestLen, RefLen int
}

// Bleu returns corpus BLEU-1..4 of the candidates (exactly one pre-tokenised
// caption per id) against the references, as pycocoevalcap's
// Bleu(4).compute_score.
func Bleu(cands, refs map[string][]string) ([BleuN]float64, error) {
	s, err := BleuScores(cands, refs)
	if err != nil {
		return [BleuN]float64{}, err
	}
	return s.Corpus, nil
}

// bleuCooked is cook_test's result for one item.
type bleuCooked struct {
	testLen, refLen int
	guess, correct  [BleuN]int
}

// BleuScores returns corpus and per-item BLEU-1..4 as pycocoevalcap's
// BleuScorer.compute_score(option="closest"):
//
//   - words are the white-space-split tokens; the effective reference
//     length of an item is the reference length closest to the candidate's
//     (ties to the shorter);
//   - correct[k] = sum over candidate k-grams of min(count, max count in any
//     one reference); guess[k] = max(0, len-k+1);
//   - BLEU-k = (prod_{j<=k} (correct[j]+1e-15)/(guess[j]+1e-9))^(1/k), times
//     exp(1-1/ratio) when ratio = (testlen+1e-15)/(reflen+1e-9) < 1.
func BleuScores(cands, refs map[string][]string) (*BleuScore, error) {
	ids, err := checkInputs(cands, refs)
	if err != nil {
		return nil, err
	}
	const small, tiny = 1e-9, 1e-15
	out := &BleuScore{PerItem: make(map[string][BleuN]float64, len(ids))}
	var totGuess, totCorrect [BleuN]int
	for _, id := range ids {
		c := bleuCook(cands[id][0], refs[id])
		out.TestLen += c.testLen
		out.RefLen += c.refLen
		var item [BleuN]float64
		bleu := 1.0
		for k := 0; k < BleuN; k++ {
			totGuess[k] += c.guess[k]
			totCorrect[k] += c.correct[k]
			bleu *= (float64(c.correct[k]) + tiny) / (float64(c.guess[k]) + small)
			item[k] = math.Pow(bleu, 1/float64(k+1))
		}
		ratio := (float64(c.testLen) + tiny) / (float64(c.refLen) + small)
		if ratio < 1 {
			for k := range item {
				item[k] *= math.Exp(1 - 1/ratio)
			}
		}
		out.PerItem[id] = item
	}
	bleu := 1.0
	for k := 0; k < BleuN; k++ {
		bleu *= (float64(totCorrect[k]) + tiny) / (float64(totGuess[k]) + small)
		out.Corpus[k] = math.Pow(bleu, 1/float64(k+1))
	}
	ratio := (float64(out.TestLen) + tiny) / (float64(out.RefLen) + small)
	if ratio < 1 {
		for k := range out.Corpus {
			out.Corpus[k] *= math.Exp(1 - 1/ratio)
		}
	}
	return out, nil
}

// bleuCook is cook_refs + cook_test with the "closest" reference length.
func bleuCook(cand string, refs []string) bleuCooked {
	maxCounts := make([]map[string]int, BleuN)
	for k := range maxCounts {
		maxCounts[k] = map[string]int{}
	}
	refLens := make([]int, len(refs))
	for i, r := range refs {
		words := pySplit(r)
		refLens[i] = len(words)
		for k, m := range ngramCounts(words, BleuN) {
			for g, n := range m.counts {
				if n > maxCounts[k][g] {
					maxCounts[k][g] = n
				}
			}
		}
	}
	words := pySplit(cand)
	c := bleuCooked{testLen: len(words)}
	// min((abs(l-testlen), l) for l in reflens)[1]
	best := -1
	for _, l := range refLens {
		d := l - c.testLen
		if d < 0 {
			d = -d
		}
		if best < 0 {
			best = l
			continue
		}
		bd := best - c.testLen
		if bd < 0 {
			bd = -bd
		}
		if d < bd || (d == bd && l < best) {
			best = l
		}
	}
	c.refLen = best
	for k, m := range ngramCounts(words, BleuN) {
		c.guess[k] = max(0, c.testLen-k)
		for g, n := range m.counts {
			c.correct[k] += min(maxCounts[k][g], n)
		}
	}
	return c
}
