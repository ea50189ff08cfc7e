package shapes

import "fmt"

// ConstantCaptionScore is the caption report of describing every scene
// with the same description d: the "constant guess" baseline.
func ConstantCaptionScore(d Description, scenes []Scene) CaptionReport {
	var rep CaptionReport
	for i := range scenes {
		rep.addScore(ScoreDescription(d, &scenes[i]))
	}
	rep.finish()
	return rep
}

// BestConstantCaption searches every one-object description (each size,
// colour and shape of c, each position) for the one that, given to every
// scene, has the highest mean attribute accuracy: the best a captioner
// ignoring its input can do with a one-object caption. Ties go to the
// first in the order sizes, colours, shapes, positions.
func BestConstantCaption(c Config, scenes []Scene) (Description, CaptionReport) {
	var best Object
	bestSum := -1.0
	for _, sz := range allSizes {
		for _, col := range c.colors() {
			for _, sh := range c.shapes() {
				for _, pos := range allPositions {
					g := Object{Size: sz, Color: col, Shape: sh, Position: pos}
					sum := 0.0
					for i := range scenes {
						sum += constantAccuracy(g, &scenes[i])
					}
					if sum > bestSum {
						best, bestSum = g, sum
					}
				}
			}
		}
	}
	d := Description{Objects: []Object{best}}
	return d, ConstantCaptionScore(d, scenes)
}

// constantAccuracy is ScoreDescription(one-object g, s).Accuracy() without
// the search: with one caption object and no relation, the best matching
// pairs g with the image object it agrees with most, and the slots are
// 3n, plus the position of a lone object, plus n-1 relations.
func constantAccuracy(g Object, s *Scene) float64 {
	n := len(s.Objects)
	if n == 0 {
		return 0
	}
	best := 0
	for k := range s.Objects {
		best = max(best, objectSlots(g, s.Objects[k].Object, n == 1))
	}
	total := 3 * n
	if n == 1 {
		total++
	} else {
		total += n - 1
	}
	return float64(best) / float64(total)
}

// ChanceReport gathers the chance levels of every metric on a set of
// scenes.
type ChanceReport struct {
	// VQA: uniformly random answers of the right type (ChanceVQA).
	VQA VQAReport `json:"vqa"`
	// Recall: a random ranking of the scenes' own captions and images
	// (ChanceRecall over RetrievalHits).
	Recall RecallReport `json:"recall"`
	// ConstantCaption is the best one-object caption given to every scene
	// (BestConstantCaption) and Caption its scores.
	ConstantCaption string        `json:"constant_caption"`
	Caption         CaptionReport `json:"caption"`
}

// Chance computes the chance levels of scenes generated with c, for
// Recall@K at each of ks (BLIP reports 1, 5 and 10).
func Chance(c Config, scenes []Scene, ks []int) (ChanceReport, error) {
	if len(scenes) == 0 {
		return ChanceReport{}, fmt.Errorf("shapes: chance: no scenes")
	}
	_, _, descs := RetrievalTexts(scenes)
	var rep ChanceReport
	rec, err := ChanceRecall(RetrievalHits(descs, scenes), len(scenes), ks)
	if err != nil {
		return ChanceReport{}, err
	}
	rep.Recall = rec
	rep.VQA = ChanceVQA(c, Questions(scenes))
	d, cr := BestConstantCaption(c, scenes)
	rep.Caption = cr
	if rep.ConstantCaption, err = Caption(d); err != nil {
		return ChanceReport{}, err
	}
	return rep, nil
}
