package shapes

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Matches reports whether description d states exactly scene s: the same
// objects (the same position for a lone object), and n-1 relations, all
// true in the image, linking every object. It is the hit rule of retrieval:
// for images with one or two objects it holds exactly when the two have
// the same attribute set; with three or more a caption states n-1 of the
// image's relations, and any image in which those hold is a hit.
func Matches(d Description, s *Scene) bool {
	n := len(s.Objects)
	if len(d.Objects) != n || n == 0 {
		return false
	}
	byName := make(map[string]int, n)
	for g := range s.Objects {
		byName[s.Objects[g].Name()] = g
	}
	if len(byName) != n { // not a generated scene: names do not identify objects
		return ScoreDescription(d, s).Exact
	}
	toScene := make([]int, n)
	used := make([]bool, n)
	for p, o := range d.Objects {
		g, ok := byName[o.Name()]
		if !ok || used[g] || (n == 1 && o.Position != s.Objects[g].Position) {
			return false
		}
		used[g], toScene[p] = true, g
	}
	pairs, conflicts := statedPairs(d)
	if len(conflicts) > 0 {
		return false
	}
	if n == 1 {
		return len(pairs) == 0
	}
	if len(pairs) != n-1 {
		return false
	}
	for k, rel := range pairs {
		if truth, ok := s.RelationOf(toScene[k.lo], toScene[k.hi]); !ok || truth != rel {
			return false
		}
	}
	return linksAll(pairs, n)
}

// objectSetKey is the sorted multiset of object names (with the position
// of a lone object): descriptions and scenes that Match share it.
func objectSetKey(objs []Object) string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name()
		if len(objs) == 1 {
			names[i] += " @" + string(o.Position)
		}
	}
	slices.Sort(names)
	return strings.Join(names, "; ")
}

// RetrievalTexts lists every caption of scenes, as BLIP's retrieval
// evaluation does: texts, textImage[t] the index in scenes of text t's
// image, and descs[t] the scene's description (what the text states).
func RetrievalTexts(scenes []Scene) (texts []string, textImage []int, descs []Description) {
	for i := range scenes {
		d := scenes[i].Description()
		for _, c := range scenes[i].Captions {
			texts = append(texts, c)
			textImage = append(textImage, i)
			descs = append(descs, d)
		}
	}
	return texts, textImage, descs
}

// RetrievalHits returns, for each text, the indices of the scenes it
// Matches: any of them counts as a hit for text-to-image retrieval, and
// the text counts as a hit for each of them in image-to-text retrieval.
func RetrievalHits(texts []Description, scenes []Scene) [][]int {
	groups := map[string][]int{}
	for i := range scenes {
		objs := make([]Object, len(scenes[i].Objects))
		for g, o := range scenes[i].Objects {
			objs[g] = o.Object
		}
		k := objectSetKey(objs)
		groups[k] = append(groups[k], i)
	}
	hits := make([][]int, len(texts))
	for t, d := range texts {
		hits[t] = []int{}
		for _, i := range groups[objectSetKey(d.Objects)] {
			if Matches(d, &scenes[i]) {
				hits[t] = append(hits[t], i)
			}
		}
	}
	return hits
}

// RecallReport holds Recall@K for each K, in both directions.
type RecallReport struct {
	K           []int     `json:"k"`
	TextToImage []float64 `json:"text_to_image"` // text query, image gallery
	ImageToText []float64 `json:"image_to_text"` // image query, text gallery
}

// Mean is the mean of all recalls, BLIP's r_mean.
func (r RecallReport) Mean() float64 {
	var s float64
	for i := range r.K {
		s += r.TextToImage[i] + r.ImageToText[i]
	}
	if len(r.K) == 0 {
		return 0
	}
	return s / float64(2*len(r.K))
}

// RetrievalRecall computes Recall@K from a similarity matrix sim[text][image]
// (larger is more similar) and the hit sets of RetrievalHits. A query
// scores 1 when a hit ranks within the top K. Ties are resolved by
// expectation over a random order of the tied items, so a constant
// similarity scores exactly ChanceRecall; NaN ranks last.
func RetrievalRecall[F float32 | float64](sim [][]F, hits [][]int, ks []int) (RecallReport, error) {
	nt := len(sim)
	if nt == 0 || len(hits) != nt {
		return RecallReport{}, fmt.Errorf("shapes: recall: %d similarity rows for %d texts", nt, len(hits))
	}
	ni := len(sim[0])
	for t := range sim {
		if len(sim[t]) != ni || ni == 0 {
			return RecallReport{}, fmt.Errorf("shapes: recall: similarity row %d has %d columns, want %d > 0", t, len(sim[t]), ni)
		}
	}
	hits, imgHits, err := invertHits(hits, ni)
	if err != nil {
		return RecallReport{}, err
	}
	if err := checkKs(ks); err != nil {
		return RecallReport{}, err
	}
	rep := RecallReport{K: slices.Clone(ks), TextToImage: make([]float64, len(ks)), ImageToText: make([]float64, len(ks))}
	row := make([]float64, ni)
	for t := range sim {
		for i := range row {
			row[i] = float64(sim[t][i])
		}
		for k, K := range ks {
			rep.TextToImage[k] += expectedHit(row, hits[t], K)
		}
	}
	col := make([]float64, nt)
	for i := 0; i < ni; i++ {
		for t := range col {
			col[t] = float64(sim[t][i])
		}
		for k, K := range ks {
			rep.ImageToText[k] += expectedHit(col, imgHits[i], K)
		}
	}
	for k := range ks {
		rep.TextToImage[k] /= float64(nt)
		rep.ImageToText[k] /= float64(ni)
	}
	return rep, nil
}

// invertHits checks text->images hit lists, drops repeats, and also returns
// the image->texts lists.
func invertHits(hits [][]int, nImages int) (clean, inv [][]int, err error) {
	clean = make([][]int, len(hits))
	inv = make([][]int, nImages)
	for t, hs := range hits {
		seen := map[int]bool{}
		for _, i := range hs {
			if i < 0 || i >= nImages {
				return nil, nil, fmt.Errorf("shapes: recall: text %d hits image %d of %d", t, i, nImages)
			}
			if !seen[i] {
				seen[i] = true
				clean[t] = append(clean[t], i)
				inv[i] = append(inv[i], t)
			}
		}
	}
	return clean, inv, nil
}

func checkKs(ks []int) error {
	if len(ks) == 0 {
		return fmt.Errorf("shapes: recall: no K given")
	}
	for _, k := range ks {
		if k < 1 {
			return fmt.Errorf("shapes: recall: K = %d, need K >= 1", k)
		}
	}
	return nil
}

// expectedHit is the probability that a hit ranks within the top K when
// items are sorted by descending score and tied items in random order.
func expectedHit(scores []float64, hits []int, K int) float64 {
	if len(hits) == 0 {
		return 0
	}
	isHit := make(map[int]bool, len(hits))
	best := math.Inf(-1)
	for _, i := range hits {
		isHit[i] = true
		best = math.Max(best, score(scores[i]))
	}
	above, tiedMiss, tiedHit := 0, 0, 0
	for i, x := range scores {
		x = score(x)
		switch {
		case isHit[i]:
			if x == best {
				tiedHit++
			}
		case x > best:
			above++
		case x == best:
			tiedMiss++
		}
	}
	r := K - above // places left for the tied group
	if r <= 0 {
		return 0
	}
	return 1 - noHitChance(tiedMiss, tiedHit, r)
}

// score maps NaN below every number.
func score(x float64) float64 {
	if math.IsNaN(x) {
		return math.Inf(-1)
	}
	return x
}

// noHitChance is C(miss, r) / C(miss+hit, r): the chance that r items drawn
// from miss non-hits and hit hits hold no hit.
func noHitChance(miss, hit, r int) float64 {
	if r > miss {
		return 0
	}
	p := 1.0
	for i := 0; i < r; i++ {
		p *= float64(miss-i) / float64(miss+hit-i)
	}
	return p
}

// ChanceRecall is the expected Recall@K of a random ranking, given the hit
// sets of RetrievalHits over nImages images: a query with h hits among G
// gallery items scores 1 - C(G-h, K)/C(G, K).
func ChanceRecall(hits [][]int, nImages int, ks []int) (RecallReport, error) {
	if len(hits) == 0 || nImages < 1 {
		return RecallReport{}, fmt.Errorf("shapes: chance recall: %d texts, %d images", len(hits), nImages)
	}
	if err := checkKs(ks); err != nil {
		return RecallReport{}, err
	}
	hits, imgHits, err := invertHits(hits, nImages)
	if err != nil {
		return RecallReport{}, err
	}
	nt := len(hits)
	rep := RecallReport{K: slices.Clone(ks), TextToImage: make([]float64, len(ks)), ImageToText: make([]float64, len(ks))}
	for k, K := range ks {
		for _, h := range hits {
			if len(h) > 0 {
				rep.TextToImage[k] += 1 - noHitChance(nImages-len(h), len(h), K)
			}
		}
		for _, h := range imgHits {
			if len(h) > 0 {
				rep.ImageToText[k] += 1 - noHitChance(nt-len(h), len(h), K)
			}
		}
		rep.TextToImage[k] /= float64(nt)
		rep.ImageToText[k] /= float64(nImages)
	}
	return rep, nil
}
