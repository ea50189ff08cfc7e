package blip

import (
	"math"
	"testing"
)

// TestITMScorerMatchesMatchTexts: the scorer, whose cross-attention keys
// and values are computed once per image and gathered to the pairs, gives
// the logits of MatchTexts (keys and values projected from every pair's
// gathered states), on pairs in scrambled order with repeats, a padded
// last batch, fewer images than the plan holds, and a second Score call
// over other states that leaves a slot of the first call unused.
func TestITMScorerMatchesMatchTexts(t *testing.T) {
	gd := openGolden(t)
	texts := gd.texts()
	b := len(texts)
	pixels := gd.f32("pixel_values")
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			m := loadTiny(t, "tiny-retrieval", be)
			ref, err := m.MatchTexts(be, pixels, b, texts)
			if err != nil {
				t.Fatal(err)
			}
			states, err := m.ImageStates(be, pixels, b)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := m.NewITMScorer(be, b+1, 3, gd.shape("itm.input_ids")[1]+2)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			check := func(what string, images []int, pairs []ITMPair) {
				t.Helper()
				per := len(states) / b
				var st []float32
				for _, i := range images {
					st = append(st, states[i*per:(i+1)*per]...)
				}
				var text []int
				for k := range pairs {
					text = append(text, k%b)
					pairs[k].Text = texts[k%b]
				}
				got, err := sc.Score(st, len(images), pairs)
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for k, p := range pairs {
					want := ref[images[p.Image]][text[k]].ITMLogits
					for c := range 2 {
						worst = max(worst, math.Abs(float64(got[k][c]-want[c])))
					}
				}
				if !(worst <= bc.tol) {
					t.Errorf("%s: max abs error %.3g > %.3g against MatchTexts", what, worst, bc.tol)
				}
				t.Logf("%s: %d pairs, max abs error %.3g", what, len(pairs), worst)
			}
			var all []ITMPair
			for k := range 2*b*b + 1 {
				all = append(all, ITMPair{Image: (k*7 + k/b) % b})
			}
			check("all pairs", []int{0, 1, 2, 3}, all)
			// Slot 1 keeps the first call's keys; no pair names it.
			check("other states", []int{2, 3, 0}, []ITMPair{{Image: 2}, {Image: 0}, {Image: 0}, {Image: 2}, {Image: 2}})
		})
	}
}
