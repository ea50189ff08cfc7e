package shapes

import (
	"math"
	"testing"
)

// handScene builds a 64-px scene with objects centred in the given cells.
func handScene(objs []Object, cells [][2]int) Scene {
	s := Scene{ImageID: 1, Width: 64, Height: 64}
	cell := 64.0 / GridCells
	for i, o := range objs {
		so := SceneObject{Object: o, Cell: cells[i]}
		side := 0.5 * cell
		if o.Size == Large {
			side = 0.8 * cell
		}
		place(&so, (float64(cells[i][1])+0.5)*cell, (float64(cells[i][0])+0.5)*cell, side)
		s.Objects = append(s.Objects, so)
	}
	s.Relations = chain(s.Objects)
	return s
}

var (
	redCircle   = Object{Size: Small, Color: Red, Shape: Circle}
	blueSquare  = Object{Size: Large, Color: Blue, Shape: Square}
	blueCircle  = Object{Size: Small, Color: Blue, Shape: Circle}
	greenStar   = Object{Size: Large, Color: Green, Shape: Star, Position: Top}
	pairScene   = handScene([]Object{redCircle, blueSquare}, [][2]int{{1, 0}, {1, 2}})
	singleScene = handScene([]Object{greenStar}, [][2]int{{0, 1}})
)

func TestScoreCaption(t *testing.T) {
	circles := handScene([]Object{redCircle, blueCircle}, [][2]int{{1, 0}, {1, 2}})
	cases := []struct {
		scene          *Scene
		caption        string
		correct, total int
		exact, parsed  bool
	}{
		{&pairScene, "a small red circle left of a large blue square", 7, 7, true, true},
		{&pairScene, "a large blue square to the right of a small red circle", 7, 7, true, true},
		{&pairScene, "a small red circle left of a large blue square right of a small red circle", 7, 11, false, true},
		{&pairScene, "a small red circle above a large blue square", 6, 7, false, true},
		{&pairScene, "a small green circle left of a large blue square", 6, 7, false, true},
		{&pairScene, "a large blue square left of a small red circle", 6, 7, false, true},
		{&pairScene, "a small red circle left of a large blue square above a large blue square", 7, 11, false, true},
		{&pairScene, "a small red circle", 3, 7, false, true},
		{&pairScene, "a small red circle left of a large blue square left of a small green star", 7, 11, false, true},
		{&pairScene, "a small red circle on the left", 3, 7, false, true},
		{&pairScene, "blue blue", 0, 7, false, false},
		{&singleScene, "a large green star at the top", 4, 4, true, true},
		{&singleScene, "a large green star on the left", 3, 4, false, true},
		{&singleScene, "a large green star", 3, 4, false, true},
		{&singleScene, "a green star at the top", 3, 4, false, true},
		{&singleScene, "a large green star above a small red circle", 3, 8, false, true},
		{&singleScene, "", 0, 4, false, false},
		// Object slots alone cannot tell the green circles apart; the
		// relation can, and the best matching uses it.
		{&circles, "a small green circle left of a small green circle", 5, 7, false, true},
		{&circles, "a small blue circle right of a small red circle", 7, 7, true, true},
	}
	for _, tc := range cases {
		sc := ScoreCaption(tc.caption, tc.scene)
		if sc.Correct() != tc.correct || sc.Total() != tc.total || sc.Exact != tc.exact || sc.Parsed != tc.parsed {
			t.Errorf("%q: %d/%d exact %v parsed %v, want %d/%d %v %v (%+v)", tc.caption,
				sc.Correct(), sc.Total(), sc.Exact, sc.Parsed, tc.correct, tc.total, tc.exact, tc.parsed, sc)
		}
		if want := float64(tc.correct) / float64(tc.total); math.Abs(sc.Accuracy()-want) > 1e-12 {
			t.Errorf("%q: accuracy %v, want %v", tc.caption, sc.Accuracy(), want)
		}
		d, err := ParseCaption(tc.caption)
		if err == nil && Matches(d, tc.scene) != tc.exact {
			t.Errorf("%q: Matches %v, Exact %v", tc.caption, !tc.exact, tc.exact)
		}
	}
}

func TestEvaluateCaptions(t *testing.T) {
	scenes := []Scene{pairScene, singleScene}
	rep, err := EvaluateCaptions([]string{"a small red circle left of a large blue square", "a large green star on the left"}, scenes)
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 2 || math.Abs(rep.Accuracy-(1+0.75)/2) > 1e-12 || rep.ExactMatch != 0.5 || rep.ParseRate != 1 ||
		rep.Position != (SlotCount{0, 1}) || rep.Relation != (SlotCount{1, 1}) || rep.Shape != (SlotCount{3, 3}) {
		t.Errorf("report %+v", rep)
	}
	if _, err := EvaluateCaptions([]string{"x"}, scenes); err == nil {
		t.Error("length mismatch accepted")
	}
}

// On a generated world, perfect captions score 1, captions of other images
// score less, and Matches agrees with Exact.
func TestCaptionMetricsOnWorld(t *testing.T) {
	d := testDataset(t)
	scenes := d.Scenes[:100]
	var own, shifted []string
	for i := range scenes {
		own = append(own, scenes[i].Captions[0])
		shifted = append(shifted, scenes[(i+1)%len(scenes)].Captions[0])
	}
	rep, _ := EvaluateCaptions(own, scenes)
	if rep.Accuracy != 1 || rep.ExactMatch != 1 {
		t.Errorf("own captions: %+v", rep)
	}
	rep, _ = EvaluateCaptions(shifted, scenes)
	if rep.Accuracy > 0.6 || rep.ExactMatch > 0.05 || rep.ParseRate != 1 {
		t.Errorf("shifted captions: %+v", rep)
	}
	for i := range scenes {
		for j := range scenes[:20] {
			desc := scenes[j].Description()
			if Matches(desc, &scenes[i]) != ScoreDescription(desc, &scenes[i]).Exact {
				t.Fatalf("Matches and Exact disagree on %d vs %d", j, i)
			}
		}
	}
}

// The Hungarian fallback finds the same optimum as trying every matching.
func TestMaxWeightMatching(t *testing.T) {
	r := newRNG(3, 0, 0)
	for trial := 0; trial < 200; trial++ {
		n, m := 1+r.intn(5), 1+r.intn(5)
		w := make([][]float64, n)
		for i := range w {
			w[i] = make([]float64, m)
			for j := range w[i] {
				w[i][j] = float64(r.intn(5))
			}
		}
		got := maxWeightMatching(w)
		total, used := 0.0, map[int]bool{}
		for i, j := range got {
			if j >= 0 {
				if used[j] {
					t.Fatalf("column %d used twice", j)
				}
				used[j] = true
				total += w[i][j]
			}
		}
		best := 0.0
		var rec func(i int, acc float64, used []bool)
		rec = func(i int, acc float64, used []bool) {
			if i == n {
				best = math.Max(best, acc)
				return
			}
			rec(i+1, acc, used)
			for j := 0; j < m; j++ {
				if !used[j] {
					used[j] = true
					rec(i+1, acc+w[i][j], used)
					used[j] = false
				}
			}
		}
		rec(0, 0, make([]bool, m))
		if total != best {
			t.Fatalf("%v: matching %v weighs %v, best %v", w, got, total, best)
		}
	}
	// A caption with many objects takes the fallback and still scores.
	long := "a small red circle"
	for i := 0; i < 30; i++ {
		long += " left of a small red circle"
	}
	if sc := ScoreCaption(long, &pairScene); !sc.Parsed || sc.Correct() != 4 || sc.Exact {
		t.Errorf("long caption: %+v", sc)
	}
}

func TestRetrievalRecall(t *testing.T) {
	// Images 0 and 1 look the same; text t was written for image t.
	scenes := []Scene{pairScene, pairScene, singleScene, handScene([]Object{blueCircle}, [][2]int{{1, 1}})}
	scenes[3].Objects[0].Position = Center
	descs := make([]Description, len(scenes))
	for i := range scenes {
		descs[i] = scenes[i].Description()
	}
	hits := RetrievalHits(descs, scenes)
	want := [][]int{{0, 1}, {0, 1}, {2}, {3}}
	for t2, h := range hits {
		if len(h) != len(want[t2]) || h[0] != want[t2][0] {
			t.Fatalf("hits %v, want %v", hits, want)
		}
	}
	ks := []int{1, 2}
	ident := [][]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	rep, err := RetrievalRecall(ident, hits, ks)
	if err != nil || rep.TextToImage[0] != 1 || rep.ImageToText[0] != 1 || rep.Mean() != 1 {
		t.Fatalf("identity: %+v %v", rep, err)
	}
	// Text 1 ranks image 0 first: still a hit, as image 0 is identical.
	// Texts 2 and 3 rank each other's image first.
	swapped := [][]float32{{0.9, 1, 0.2, 0.1}, {1, 0.9, 0.2, 0.1}, {0.1, 0.2, 0.9, 1}, {0.1, 0.2, 1, 0.9}}
	rep, _ = RetrievalRecall(swapped, hits, ks)
	if rep.TextToImage[0] != 0.5 || rep.TextToImage[1] != 1 || rep.ImageToText[0] != 0.5 || rep.ImageToText[1] != 1 {
		t.Fatalf("swapped: %+v", rep)
	}
	// A constant similarity scores exactly chance.
	flat := [][]float64{{2, 2, 2, 2}, {2, 2, 2, 2}, {2, 2, 2, 2}, {2, 2, 2, 2}}
	rep, _ = RetrievalRecall(flat, hits, []int{1, 2, 3})
	chance, _ := ChanceRecall(hits, 4, []int{1, 2, 3})
	for k := range rep.K {
		if math.Abs(rep.TextToImage[k]-chance.TextToImage[k]) > 1e-12 || math.Abs(rep.ImageToText[k]-chance.ImageToText[k]) > 1e-12 {
			t.Fatalf("constant %+v, chance %+v", rep, chance)
		}
	}
	// By hand: texts 0, 1 have 2 hits of 4 images, texts 2, 3 one.
	if r1 := (2*(1-2.0/4) + 2*(1-3.0/4)) / 4; math.Abs(chance.TextToImage[0]-r1) > 1e-12 {
		t.Errorf("chance R@1 %v, want %v", chance.TextToImage[0], r1)
	}
	// Ties and NaN: one hit tied with one miss at the top.
	if got := expectedHit([]float64{1, 1, 0}, []int{1}, 1); got != 0.5 {
		t.Errorf("tie: %v", got)
	}
	if got := expectedHit([]float64{math.NaN(), 0, -1}, []int{0}, 2); got != 0 {
		t.Errorf("NaN hit ranked: %v", got)
	}
	if got := expectedHit([]float64{3, 2, 1}, []int{2}, 3); got != 1 {
		t.Errorf("last within K: %v", got)
	}
	// Bad input is an error, not a panic.
	if _, err := RetrievalRecall([][]float64{{1, 2}, {1}}, [][]int{{0}, {0}}, ks); err == nil {
		t.Error("ragged matrix accepted")
	}
	if _, err := RetrievalRecall(ident, [][]int{{9}, {0}, {0}, {0}}, ks); err == nil {
		t.Error("hit out of range accepted")
	}
	if _, err := RetrievalRecall(ident, hits, []int{0}); err == nil {
		t.Error("K = 0 accepted")
	}
	if _, err := ChanceRecall(nil, 3, ks); err == nil {
		t.Error("no texts accepted")
	}
}

func TestChanceRecallFormula(t *testing.T) {
	hits := make([][]int, 10)
	for i := range hits {
		hits[i] = []int{i}
	}
	rep, _ := ChanceRecall(hits, 10, []int{1, 5, 10})
	for k, want := range []float64{0.1, 0.5, 1} {
		if math.Abs(rep.TextToImage[k]-want) > 1e-12 || math.Abs(rep.ImageToText[k]-want) > 1e-12 {
			t.Errorf("R@%d = %v / %v, want %v", rep.K[k], rep.TextToImage[k], rep.ImageToText[k], want)
		}
	}
}

func TestVQAAccuracy(t *testing.T) {
	ten := func(a string) []string {
		out := make([]string, 10)
		for i := range out {
			out[i] = a
		}
		return out
	}
	mixed := append(ten("blue")[:8], "red", "red")
	cases := []struct {
		pred    string
		answers []string
		want    float64
	}{
		{"red", ten("red"), 1},
		{"Red.", ten("red"), 1},
		{"blue", ten("red"), 0},
		{"two", ten("2"), 1},
		{"the circle", ten("circle"), 1},
		{"red", mixed, 0.6}, // official VQA: 2 matching humans -> 0.6
		{"blue", mixed, 1},
		{"red", []string{"red"}, 1},
		{"red", nil, 0},
	}
	for _, tc := range cases {
		if got := VQAAccuracy(tc.pred, tc.answers); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("VQAAccuracy(%q, %q) = %v, want %v", tc.pred, tc.answers, got, tc.want)
		}
	}
}

func TestEvaluateVQAAndChance(t *testing.T) {
	d := testDataset(t)
	qs := Questions(d.Scenes)
	perfect, wrong := map[int]string{}, map[int]string{}
	for _, q := range qs {
		perfect[q.QuestionID] = q.Answer
		wrong[q.QuestionID] = "zebra"
	}
	if rep := EvaluateVQA(perfect, qs); rep.Accuracy != 1 || rep.N != len(qs) || rep.ByType[QColor] != 1 {
		t.Errorf("perfect: %+v", rep)
	}
	if rep := EvaluateVQA(wrong, qs); rep.Accuracy != 0 {
		t.Errorf("wrong: %+v", rep)
	}
	if rep := EvaluateVQA(map[int]string{}, qs); rep.Accuracy != 0 {
		t.Errorf("missing: %+v", rep)
	}
	ch := ChanceVQA(d.Config, qs)
	want := map[QuestionType]float64{
		QColor: 1.0 / numColors(allColors), QShape: 1.0 / 8, QSize: 0.5, QCount: 1.0 / 4,
		QExist: 0.5, QPosition: 0.2, QRelation: 0.5,
	}
	for qt, w := range want {
		if math.Abs(ch.ByType[qt]-w) > 1e-12 {
			t.Errorf("chance %s = %v, want %v", qt, ch.ByType[qt], w)
		}
	}
	// Yes/no questions are balanced per image, so a constant answer gets
	// exactly 1/2 on them.
	prior, answers := PriorVQA(qs, qs)
	if prior.ByType[QExist] != 0.5 || prior.ByType[QRelation] != 0.5 {
		t.Errorf("prior %+v (answers %v)", prior, answers)
	}
}

func numColors(c []Color) float64 { return float64(len(c)) }

// constantAccuracy is ScoreDescription's accuracy for one-object guesses.
func TestConstantGuess(t *testing.T) {
	d := testDataset(t)
	guesses := []Object{
		{Size: Small, Color: Red, Shape: Circle, Position: Left},
		{Size: Large, Color: Black, Shape: Star, Position: Center},
	}
	for _, g := range guesses {
		for i := range d.Scenes[:100] {
			want := ScoreDescription(Description{Objects: []Object{g}}, &d.Scenes[i]).Accuracy()
			if got := constantAccuracy(g, &d.Scenes[i]); math.Abs(got-want) > 1e-12 {
				t.Fatalf("scene %d: %v vs %v", i, got, want)
			}
		}
	}
	// In a one-object world a fixed guess gets each slot right with
	// chance 1/#values: (1/2 + 1/10 + 1/8 + 1/5) / 4.
	c := testConfig()
	c.MaxObjects = 1
	c.N = 2000
	w, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	analytic := (0.5 + 0.1 + 0.125 + 0.2) / 4
	rep := ConstantCaptionScore(Description{Objects: []Object{guesses[0]}}, w.Scenes)
	if math.Abs(rep.Accuracy-analytic) > 0.02 {
		t.Errorf("constant guess %v, analytic %v", rep.Accuracy, analytic)
	}
	best, brep := BestConstantCaption(c, w.Scenes)
	if brep.Accuracy < rep.Accuracy || brep.Accuracy > analytic+0.06 || len(best.Objects) != 1 {
		t.Errorf("best constant %v: %v", best, brep.Accuracy)
	}
}

func TestChanceReport(t *testing.T) {
	d := testDataset(t)
	test := d.Split(SplitTest)
	rep, err := Chance(d.Config, test, []int{1, 5, 10})
	if err != nil {
		t.Fatal(err)
	}
	n := float64(len(test))
	if rep.Recall.TextToImage[0] < 1/n || rep.Recall.TextToImage[0] > 3/n || rep.Recall.TextToImage[2] < rep.Recall.TextToImage[1] {
		t.Errorf("recall chance %+v with %v images", rep.Recall, n)
	}
	if rep.VQA.Accuracy <= 0.1 || rep.VQA.Accuracy >= 0.5 || rep.Caption.Accuracy <= 0 || rep.Caption.Accuracy >= 0.5 {
		t.Errorf("chance %+v", rep)
	}
	if _, err := ParseCaption(rep.ConstantCaption); err != nil {
		t.Error(err)
	}
	t.Logf("chance on %d test images: R@1/5/10 t2i %.3f/%.3f/%.3f, VQA %.3f, constant caption %q accuracy %.3f",
		len(test), rep.Recall.TextToImage[0], rep.Recall.TextToImage[1], rep.Recall.TextToImage[2], rep.VQA.Accuracy, rep.ConstantCaption, rep.Caption.Accuracy)
}

// Stating one pair twice (consistently) is still exact; contradicting it
// or relating an object to itself is not.
func TestRepeatedRelations(t *testing.T) {
	objs := []Object{redCircle, blueSquare}
	twice := Description{Objects: objs, Relations: []Relation{{0, LeftOf, 1}, {1, RightOf, 0}}}
	if sc := ScoreDescription(twice, &pairScene); !sc.Exact || sc.Accuracy() != 1 || !Matches(twice, &pairScene) {
		t.Errorf("consistent repeat: %+v", sc)
	}
	for _, rels := range [][]Relation{
		{{0, LeftOf, 1}, {1, LeftOf, 0}},
		{{0, LeftOf, 0}},
		{{0, LeftOf, 7}},
		{{-1, LeftOf, 1}},
		{{0, "beside", 1}},
	} {
		d := Description{Objects: objs, Relations: rels}
		if sc := ScoreDescription(d, &pairScene); sc.Exact || Matches(d, &pairScene) || sc.Accuracy() >= 1 {
			t.Errorf("%v: %+v", rels, sc)
		}
		_ = d.Key() // must not panic
	}
}
