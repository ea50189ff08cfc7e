package blip

import (
	"math"
	"strings"
	"testing"

	"blip/gpu"
	"blip/graph"
)

// TestITMScorerMatchesMatchTexts: the scorer, whose cross-attention keys
// and values are computed once per image and gathered to the pairs, gives
// the logits of MatchTexts (keys and values projected from every pair's
// gathered states), on pairs in scrambled order with repeats, a padded
// last batch, fewer images than the plan holds, a second Score call over
// other states that leaves a slot of the first call unused, and images
// named in order (copied a run at a time). The
// projection runs 3 images at a time (itmKVBatch), so that the 4 images
// of a call take two runs.
func TestITMScorerMatchesMatchTexts(t *testing.T) {
	setKVBatch(t, 3)
	gd, texts, pixels, each := itmGolden(t)
	b := len(texts)
	each(func(t *testing.T, bc backendCase, be gpu.Backend, m *Model, ref [][]Match) {
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
		// Images named in order: runs of consecutive slots copied at once.
		check("in order", []int{1, 2, 3, 0}, []ITMPair{{Image: 0}, {Image: 1}, {Image: 1}, {Image: 2}, {Image: 3}, {Image: 3}})
		// One image's candidate texts (re-ranking): batches whose rows all
		// name one slot run on the one-image plan, the rows' queries one
		// batch over that slot's keys; a padded last batch; then the same
		// slot after a Score rewrote it with another image's states (the
		// plan's copy must follow), and another slot.
		shared, gathered := sc.runsShared, sc.runsGathered
		one := func(slot, n int) []ITMPair {
			ps := make([]ITMPair, n)
			for k := range ps {
				ps[k].Image = slot
			}
			return ps
		}
		check("one image", []int{1, 2, 3, 0}, one(2, 7))
		check("slot rewritten", []int{3, 1, 2}, one(2, 4))
		check("another image", []int{1, 2, 3, 0}, one(0, 3))
		if sc.runsShared-shared != 3+1+2 || sc.runsGathered != gathered {
			t.Errorf("one-image batches: %d on the one-image plan, %d gathered; want 6 and 0", sc.runsShared-shared, sc.runsGathered-gathered)
		}
		if gathered == 0 {
			t.Error("no mixed batch ran on the gathering plan")
		}
	})
}

// setKVBatch sets itmKVBatch for the test.
func setKVBatch(t *testing.T, n int) {
	old := itmKVBatch
	itmKVBatch = n
	t.Cleanup(func() { itmKVBatch = old })
}

// TestITMScorerLoadStates: image states handed to the scorer on the device
// (LoadPixels: a vision plan's output; LoadStates from a view) give the
// logits of MatchTexts, into slots offset from the images' indices, in
// projection runs of 3 and 1 images; a pair naming an empty slot and
// states outside the slots are errors.
func TestITMScorerLoadStates(t *testing.T) {
	setKVBatch(t, 3)
	gd, texts, pixels, each := itmGolden(t)
	b := len(texts)
	each(func(t *testing.T, bc backendCase, be gpu.Backend, m *Model, ref [][]Match) {
		sc, err := m.NewITMScorer(be, b+2, 4, gd.shape("itm.input_ids")[1]+2)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if err := sc.LoadPixels(pixels, 1, b); err != nil {
			t.Fatal(err)
		}
		var pairs []ITMPair
		for k := range b*b + 1 {
			pairs = append(pairs, ITMPair{Image: 1 + (k*5+k/b)%b, Text: texts[k%b]})
		}
		got, err := sc.ScorePairs(pairs)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for k, p := range pairs {
			want := ref[p.Image-1][k%b].ITMLogits
			for c := range 2 {
				worst = max(worst, math.Abs(float64(got[k][c]-want[c])))
			}
		}
		if !(worst <= bc.tol) {
			t.Errorf("LoadPixels: max abs error %.3g > %.3g against MatchTexts", worst, bc.tol)
		}
		t.Logf("LoadPixels: %d pairs, max abs error %.3g", len(pairs), worst)

		if _, err := sc.ScorePairs([]ITMPair{{Image: 0, Text: texts[0]}}); err == nil || !strings.Contains(err.Error(), "slot 0 holds no image") {
			t.Errorf("pair over an empty slot: error %v", err)
		}
		states, err := m.ImageStates(be, pixels, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.LoadStates(gpu.View{}, b, 3); err == nil || !strings.Contains(err.Error(), "outside the 6 slots") {
			t.Errorf("states past the last slot: error %v", err)
		}
		if err := sc.LoadStates(gpu.View{}, 0, 0); err == nil || !strings.Contains(err.Error(), "states of 0 images") {
			t.Errorf("no states: error %v", err)
		}

		// LoadStates from a view: image 2 alone into slot 0 (a copy of
		// the states on the device, in a plan of its own).
		per := len(states) / b
		g := graph.New()
		x := g.Input("states", gpu.F32, 1, per)
		y := g.Scale(x, 1)
		p, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{y}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.WriteF32(x, states[2*per:3*per]); err != nil {
			t.Fatal(err)
		}
		if err := p.Record(); err != nil {
			t.Fatal(err)
		}
		view, err := p.View(y)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.LoadStates(view, 0, 2); err == nil || !strings.Contains(err.Error(), "fewer than 2 images") {
			t.Errorf("a view of one image for two: error %v", err)
		}
		if err := sc.LoadStates(view, 0, 1); err != nil {
			t.Fatal(err)
		}
		got, err = sc.ScorePairs([]ITMPair{{Image: 0, Text: texts[1]}, {Image: 3, Text: texts[1]}})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range [][2]float32{ref[2][1].ITMLogits, ref[2][1].ITMLogits} {
			for c := range 2 {
				if d := math.Abs(float64(got[k][c] - want[c])); !(d <= bc.tol) {
					t.Errorf("LoadStates pair %d: logit %d %v, MatchTexts %v", k, c, got[k][c], want[c])
				}
			}
		}
	})
}

// itmGolden is the setup of the ITM scorer tests: the golden texts and
// pixels, and per backend the tiny retrieval model with MatchTexts' logits
// of every (image, text) pair to compare with.
func itmGolden(t *testing.T) (gd *golden, texts [][]int32, pixels []float32, each func(func(t *testing.T, bc backendCase, be gpu.Backend, m *Model, ref [][]Match))) {
	gd = openGolden(t)
	texts = gd.texts()
	pixels = gd.f32("pixel_values")
	each = func(f func(t *testing.T, bc backendCase, be gpu.Backend, m *Model, ref [][]Match)) {
		for _, bc := range backends {
			t.Run(bc.name, func(t *testing.T) {
				be := bc.open(t)
				m := loadTiny(t, "tiny-retrieval", be)
				ref, err := m.MatchTexts(be, pixels, len(texts), texts)
				if err != nil {
					t.Fatal(err)
				}
				f(t, bc, be, m, ref)
			})
		}
	}
	return gd, texts, pixels, each
}
