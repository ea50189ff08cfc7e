package capfilt

import (
	"fmt"
	"sort"

	"blip/data/preprocess"
	"blip/gpu"
)

// ScoreCaptions returns the filter's match probability of every caption
// of every image (paths[i] with captions[i]), texts prepared as Run
// prepares them (o.MaxWords, o.MaxTextTokens), o.Batch images at a time.
func ScoreCaptions(be gpu.Backend, ms *Models, paths []string, captions [][]string, o Options) ([][]float32, error) {
	if len(paths) != len(captions) {
		return nil, fmt.Errorf("capfilt: %d images, %d caption lists", len(paths), len(captions))
	}
	batch := max(1, o.Batch)
	out := make([][]float32, len(paths))
	for s := 0; s < len(paths); s += batch {
		e := min(s+batch, len(paths))
		var pix []float32
		var texts [][]int32
		var owner []int
		for i := s; i < e; i++ {
			img, err := preprocess.Load(paths[i])
			if err != nil {
				return nil, err
			}
			p, err := ms.FilterProc.Pixels(img)
			if err != nil {
				return nil, fmt.Errorf("%s: filter preprocessing: %w", paths[i], err)
			}
			pix = append(pix, p...)
			for _, c := range captions[i] {
				texts = append(texts, encodeFilterText(ms.FilterTok, c, &o))
				owner = append(owner, i-s)
			}
		}
		probs, err := ms.score(be, pix, e-s, texts, owner, o.MaxTextTokens)
		if err != nil {
			return nil, err
		}
		k := 0
		for i := s; i < e; i++ {
			out[i] = probs[k : k+len(captions[i])]
			k += len(captions[i])
		}
	}
	return out, nil
}

// Calibration is a filter threshold chosen on captions whose truth is
// known: the threshold that maximises the smaller of the fraction of
// matching captions kept and of mismatched ones removed.
type Calibration struct {
	Threshold float64 `json:"threshold"`
	Positives int     `json:"positives"`
	Negatives int     `json:"negatives"`
	// Kept is the fraction of matching captions kept at Threshold,
	// Removed that of mismatched ones removed.
	Kept    float64 `json:"kept"`
	Removed float64 `json:"removed"`
}

// Calibrate picks the threshold (keep when p >= threshold) that maximises
// min(kept matching, removed mismatched) over pos (scores of matching
// pairs) and neg (mismatched ones); ties go to the larger sum of the two,
// then to the threshold nearer 0.5, BLIP's argmax rule. The threshold is the midpoint between neighbouring
// scores, so that it does not sit on a calibration score.
func Calibrate(pos, neg []float32) (Calibration, error) {
	if len(pos) == 0 || len(neg) == 0 {
		return Calibration{}, fmt.Errorf("capfilt: calibration needs matching and mismatched captions (got %d and %d)", len(pos), len(neg))
	}
	all := make([]float64, 0, len(pos)+len(neg))
	for _, s := range pos {
		all = append(all, float64(s))
	}
	for _, s := range neg {
		all = append(all, float64(s))
	}
	sort.Float64s(all)
	cands := []float64{0.5}
	for i := 0; i+1 < len(all); i++ {
		if all[i] != all[i+1] {
			cands = append(cands, (all[i]+all[i+1])/2)
		}
	}
	rate := func(t float64) (kept, removed float64) {
		k, r := 0, 0
		for _, s := range pos {
			if float64(s) >= t {
				k++
			}
		}
		for _, s := range neg {
			if float64(s) < t {
				r++
			}
		}
		return float64(k) / float64(len(pos)), float64(r) / float64(len(neg))
	}
	dist := func(x float64) float64 {
		if x > 0.5 {
			return x - 0.5
		}
		return 0.5 - x
	}
	best := Calibration{Positives: len(pos), Negatives: len(neg), Threshold: -1}
	for _, t := range cands {
		k, r := rate(t)
		bm, bs := min(best.Kept, best.Removed), best.Kept+best.Removed
		if best.Threshold < 0 || min(k, r) > bm || (min(k, r) == bm && (k+r > bs || (k+r == bs && dist(t) < dist(best.Threshold)))) {
			best.Threshold, best.Kept, best.Removed = t, k, r
		}
	}
	return best, nil
}
