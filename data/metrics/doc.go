// Package metrics implements the standard captioning and VQA evaluation
// metrics exactly as the reference Python code computes them:
//
//   - BLEU-1..4 as pycocoevalcap's Bleu(4) (bleu/bleu_scorer.py): per-image
//     clipped n-gram counts, the "closest" reference length, and a
//     corpus-level geometric mean and brevity penalty over summed counts.
//   - CIDEr as pycocoevalcap's Cider (cider/cider_scorer.py), the scorer
//     COCOEvalCap reports as "CIDEr": n = 4, sigma = 6, TF-IDF vectors with
//     document frequencies taken from the references of the evaluated set,
//     clipped cosine similarity and a Gaussian length penalty (the
//     CIDEr-D formula, with the IDF of the evaluated set rather than a
//     precomputed corpus).
//   - VQA accuracy as the official VQA v2 evaluation (vqaEval.py): answer
//     normalisation and the average of min(#matching humans / 3, 1) over
//     the leave-one-out subsets of the human answers.
//
// Captions are given pre-tokenised (tokens separated by white space), as
// pycocoevalcap receives them from its PTBTokenizer; PTBTokenize is a
// pure-Go approximation of that Java tokenizer.
//
// testdata/metrics/make_reference.py runs the original Python scorers on the
// fixtures in testdata/metrics and writes expected.json, which the tests
// compare against to 1e-9 relative.
package metrics

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// pyIsSpace is Python's str.isspace: Unicode white space plus the
// separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pySplit is Python's str.split() without arguments: runs of white space
// separate words; leading and trailing white space gives no empty words.
func pySplit(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// pyStrip is Python's str.strip() without arguments.
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// checkInputs validates the candidate/reference maps the way pycocoevalcap's
// scorers assert them: the same keys, exactly one candidate per key, at
// least one reference. It returns the keys sorted.
func checkInputs(cands, refs map[string][]string) ([]string, error) {
	if len(cands) != len(refs) {
		return nil, fmt.Errorf("metrics: %d candidate ids but %d reference ids", len(cands), len(refs))
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("metrics: no captions to score")
	}
	ids := make([]string, 0, len(cands))
	for id, c := range cands {
		r, ok := refs[id]
		if !ok {
			return nil, fmt.Errorf("metrics: id %q has a candidate but no references", id)
		}
		if len(c) != 1 {
			return nil, fmt.Errorf("metrics: id %q has %d candidates, want exactly 1", id, len(c))
		}
		if len(r) == 0 {
			return nil, fmt.Errorf("metrics: id %q has no references", id)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// ngrams are the k-grams of one order with their counts, in order of first
// appearance (the iteration order of precook's dict, which fixes the order
// of floating-point sums).
type ngrams struct {
	keys   []string
	counts map[string]int
}

// ngramCounts counts the 1..n-grams of words, as precook does: element k-1
// holds the k-grams (encoded by ngramKey).
func ngramCounts(words []string, n int) []ngrams {
	out := make([]ngrams, n)
	for k := 1; k <= n; k++ {
		g := ngrams{counts: make(map[string]int)}
		for i := 0; i+k <= len(words); i++ {
			key := ngramKey(words[i : i+k])
			if g.counts[key] == 0 {
				g.keys = append(g.keys, key)
			}
			g.counts[key]++
		}
		out[k-1] = g
	}
	return out
}

// ngramKey encodes an n-gram unambiguously (each word length-prefixed), so
// words may contain any character.
func ngramKey(words []string) string {
	var b strings.Builder
	for _, w := range words {
		b.WriteString(strconv.Itoa(len(w)))
		b.WriteByte(':')
		b.WriteString(w)
	}
	return b.String()
}
