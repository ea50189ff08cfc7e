package shapes

import "fmt"

// SlotCount is how many attribute slots of one kind were right, of how many.
type SlotCount struct {
	Correct int `json:"correct"`
	Total   int `json:"total"`
}

func (c *SlotCount) add(o SlotCount) { c.Correct += o.Correct; c.Total += o.Total }

// Rate is Correct/Total, 0 when there is no slot.
func (c SlotCount) Rate() float64 {
	if c.Total == 0 {
		return 0
	}
	return float64(c.Correct) / float64(c.Total)
}

// CaptionScore compares what one caption states with its image's ground
// truth, slot by slot. With n objects in the image and m in the caption:
//
//   - shape, colour, size: max(n, m) slots each, so objects left out and
//     objects made up both cost; a slot is right when the caption object
//     matched to an image object has that attribute;
//   - position (one-object images): 1 slot;
//   - relation (several objects): max(n-1, r) slots, r the number of object
//     pairs the caption relates; a pair is right when its objects are
//     matched and the image has that relation between them (any pair may be
//     stated, not only the generator's chain). A relation stated about a
//     one-object image is a slot, always wrong.
//
// Caption objects are matched one-to-one to image objects so as to get the
// most slots right. A caption that does not parse scores 0 of the image's
// slots.
type CaptionScore struct {
	Parsed                                 bool
	Shape, Color, Size, Position, Relation SlotCount
	// Exact: the caption parses and states exactly the image: every
	// object, nothing more, and n-1 right relations linking all objects
	// (or the right position of a lone object).
	Exact bool
}

// Correct is the number of slots right.
func (s CaptionScore) Correct() int {
	return s.Shape.Correct + s.Color.Correct + s.Size.Correct + s.Position.Correct + s.Relation.Correct
}

// Total is the number of slots.
func (s CaptionScore) Total() int {
	return s.Shape.Total + s.Color.Total + s.Size.Total + s.Position.Total + s.Relation.Total
}

// Accuracy is Correct/Total, the caption's attribute accuracy.
func (s CaptionScore) Accuracy() float64 {
	if s.Total() == 0 {
		return 0
	}
	return float64(s.Correct()) / float64(s.Total())
}

// ScoreCaption parses a caption and scores it against a scene.
func ScoreCaption(caption string, s *Scene) CaptionScore {
	d, err := ParseCaption(caption)
	if err != nil {
		n := len(s.Objects)
		sc := CaptionScore{
			Shape: SlotCount{Total: n}, Color: SlotCount{Total: n}, Size: SlotCount{Total: n},
		}
		if n == 1 {
			sc.Position.Total = 1
		} else if n > 1 {
			sc.Relation.Total = n - 1
		}
		return sc
	}
	return ScoreDescription(d, s)
}

// ScoreDescription scores a parsed description against a scene.
func ScoreDescription(d Description, s *Scene) CaptionScore {
	n, m := len(s.Objects), len(d.Objects)
	pairs, conflicts := statedPairs(d)
	best := CaptionScore{}
	bestCorrect := -1
	try := func(match []int) { // match[g] = caption object of image object g, or -1
		sc := scoreMatch(d, s, match, pairs, conflicts)
		if c := sc.Correct(); c > bestCorrect {
			best, bestCorrect = sc, c
		}
	}
	if searchSpace(n, m) <= maxSearch {
		match := make([]int, n)
		used := make([]bool, m)
		var rec func(g int)
		rec = func(g int) {
			if g == n {
				try(match)
				return
			}
			for p := -1; p < m; p++ {
				if p >= 0 && used[p] {
					continue
				}
				match[g] = p
				if p >= 0 {
					used[p] = true
				}
				rec(g + 1)
				if p >= 0 {
					used[p] = false
				}
			}
		}
		rec(0)
	} else {
		// Too many objects to try every matching (only a degenerate
		// caption or scene gets here): match on object slots alone.
		w := make([][]float64, n)
		for g := range w {
			w[g] = make([]float64, m)
			for p := range w[g] {
				w[g][p] = float64(objectSlots(d.Objects[p], s.Objects[g].Object, n == 1))
			}
		}
		try(maxWeightMatching(w))
	}
	best.Parsed = true
	best.Exact = exactScore(best, n, m, pairs, conflicts)
	return best
}

// maxSearch bounds the exhaustive matching search.
const maxSearch = 200000

// searchSpace is (m+1)^n, saturating above maxSearch.
func searchSpace(n, m int) int {
	x := 1
	for i := 0; i < n; i++ {
		x *= m + 1
		if x > maxSearch {
			return maxSearch + 1
		}
	}
	return x
}

// objectSlots counts the attributes a caption object gets right about an
// image object, the position included for a lone object.
func objectSlots(p, g Object, lone bool) int {
	k := 0
	if p.Shape == g.Shape {
		k++
	}
	if p.Color == g.Color {
		k++
	}
	if p.Size == g.Size {
		k++
	}
	if lone && p.Position == g.Position {
		k++
	}
	return k
}

// pairKey is an unordered pair of caption objects, lo < hi, with the
// relation of lo to hi.
type pairKey struct{ lo, hi int }

// statedPairs collects the caption's relations per object pair, as the
// relation of the lower-numbered object to the other. A pair stated with
// two different relations, or an object related to itself or to a missing
// object, is in conflicts.
func statedPairs(d Description) (map[pairKey]Rel, map[pairKey]bool) {
	pairs := map[pairKey]Rel{}
	conflicts := map[pairKey]bool{}
	for _, r := range d.Relations {
		a, b, rel := r.A, r.B, r.Rel
		if a > b {
			a, b, rel = b, a, rel.Inverse()
		}
		k := pairKey{a, b}
		if a == b || a < 0 || b >= len(d.Objects) || !rel.Valid() {
			conflicts[k] = true
		}
		if old, ok := pairs[k]; ok && old != rel {
			conflicts[k] = true
		}
		pairs[k] = rel
	}
	return pairs, conflicts
}

func scoreMatch(d Description, s *Scene, match []int, pairs map[pairKey]Rel, conflicts map[pairKey]bool) CaptionScore {
	n, m := len(s.Objects), len(d.Objects)
	slots := max(n, m)
	sc := CaptionScore{Shape: SlotCount{Total: slots}, Color: SlotCount{Total: slots}, Size: SlotCount{Total: slots}}
	toScene := make([]int, m)
	for i := range toScene {
		toScene[i] = -1
	}
	for g, p := range match {
		if p < 0 {
			continue
		}
		toScene[p] = g
		po, go_ := d.Objects[p], s.Objects[g].Object
		if po.Shape == go_.Shape {
			sc.Shape.Correct++
		}
		if po.Color == go_.Color {
			sc.Color.Correct++
		}
		if po.Size == go_.Size {
			sc.Size.Correct++
		}
		if n == 1 && po.Position == go_.Position {
			sc.Position.Correct++
		}
	}
	if n == 1 {
		sc.Position.Total = 1
	}
	sc.Relation.Total = len(pairs)
	if n > 1 {
		sc.Relation.Total = max(n-1, len(pairs))
	}
	for k, rel := range pairs {
		if conflicts[k] || k.lo < 0 || k.hi >= m {
			continue
		}
		a, b := toScene[k.lo], toScene[k.hi]
		if a < 0 || b < 0 {
			continue
		}
		if truth, ok := s.RelationOf(a, b); ok && truth == rel {
			sc.Relation.Correct++
		}
	}
	return sc
}

// exactScore decides Exact for the best matching: all slots right, as many
// objects as the image, and for several objects n-1 relations linking them.
func exactScore(sc CaptionScore, n, m int, pairs map[pairKey]Rel, conflicts map[pairKey]bool) bool {
	if n != m || sc.Correct() != sc.Total() || len(conflicts) > 0 {
		return false
	}
	if n <= 1 {
		return len(pairs) == 0
	}
	if len(pairs) != n-1 {
		return false
	}
	return linksAll(pairs, n)
}

// linksAll reports whether n-1 distinct pairs over n objects link them all,
// which holds iff they form no cycle.
func linksAll(pairs map[pairKey]Rel, n int) bool {
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for k := range pairs {
		if k.lo < 0 || k.hi >= n {
			return false
		}
		a, b := find(k.lo), find(k.hi)
		if a == b {
			return false
		}
		parent[a] = b
	}
	return true
}

// CaptionReport sums caption scores over a set of images.
type CaptionReport struct {
	N int `json:"n"`
	// Accuracy is the mean of the per-caption attribute accuracies.
	Accuracy float64 `json:"accuracy"`
	// ExactMatch is the fraction of captions stating exactly their image.
	ExactMatch float64 `json:"exact_match"`
	// ParseRate is the fraction of captions the grammar reads.
	ParseRate float64 `json:"parse_rate"`
	// Slot counts summed over all captions, per kind.
	Shape    SlotCount `json:"shape"`
	Color    SlotCount `json:"color"`
	Size     SlotCount `json:"size"`
	Position SlotCount `json:"position"`
	Relation SlotCount `json:"relation"`
}

// EvaluateCaptions scores caption i against scenes[i] and averages.
func EvaluateCaptions(captions []string, scenes []Scene) (CaptionReport, error) {
	if len(captions) != len(scenes) {
		return CaptionReport{}, fmt.Errorf("shapes: %d captions for %d images", len(captions), len(scenes))
	}
	var rep CaptionReport
	for i := range captions {
		rep.addScore(ScoreCaption(captions[i], &scenes[i]))
	}
	rep.finish()
	return rep, nil
}

func (r *CaptionReport) addScore(sc CaptionScore) {
	r.N++
	r.Accuracy += sc.Accuracy()
	if sc.Exact {
		r.ExactMatch++
	}
	if sc.Parsed {
		r.ParseRate++
	}
	r.Shape.add(sc.Shape)
	r.Color.add(sc.Color)
	r.Size.add(sc.Size)
	r.Position.add(sc.Position)
	r.Relation.add(sc.Relation)
}

func (r *CaptionReport) finish() {
	if r.N == 0 {
		return
	}
	n := float64(r.N)
	r.Accuracy /= n
	r.ExactMatch /= n
	r.ParseRate /= n
}
