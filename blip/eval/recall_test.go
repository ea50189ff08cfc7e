package eval

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// itm_eval on a hand-checkable matrix: 3 images, 5 texts.
func TestRecallHandMatrix(t *testing.T) {
	img2txt := [][]int{{0, 1}, {2}, {3, 4}}
	txt2img := []int{0, 0, 1, 2, 2}
	i2t := [][]float32{
		{0.1, 0.9, 0.5, 0.2, 0.3}, // text 1 first: rank 0
		{0.8, 0.7, 0.6, 0.5, 0.4}, // text 2 third: rank 2
		{0.5, 0.5, 0.5, 0.5, 0.5}, // all tied, lower index first: text 3 at rank 3
	}
	t2i := [][]float32{
		{0.2, 0.9, 0.1}, // image 0 second: 1
		{0.9, 0.1, 0.2}, // 0
		{0.3, 0.3, 0.1}, // image 1 tied with image 0, which comes first: 1
		{0.1, 0.2, 0.3}, // 0
		{0.5, 0.6, 0.4}, // image 2 last: 2
	}
	ri, err := Ranks(i2t, img2txt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 2, 3}; !equalInts(ri, want) {
		t.Errorf("i2t ranks %v, want %v", ri, want)
	}
	r, err := ITMEval(i2t, t2i, img2txt, txt2img)
	if err != nil {
		t.Fatal(err)
	}
	want := Recall{TxtR1: 100.0 / 3, TxtR5: 100, TxtR10: 100, ImgR1: 40, ImgR5: 100, ImgR10: 100}
	want.TxtRMean = (100.0/3 + 200) / 3
	want.ImgRMean = 80
	want.RMean = (want.TxtRMean + want.ImgRMean) / 2
	if !near(r.TxtR1, want.TxtR1) || !near(r.TxtR5, want.TxtR5) || !near(r.ImgR1, want.ImgR1) || !near(r.ImgR5, want.ImgR5) ||
		!near(r.TxtRMean, want.TxtRMean) || !near(r.ImgRMean, want.ImgRMean) || !near(r.RMean, want.RMean) {
		t.Errorf("recall %+v, want %+v", r, want)
	}

	// R@1/5/10 boundaries: a rank counts for R@k when it is below k.
	b := RecallFromRanks([]int{0, 4, 5, 9, 10}, []int{1})
	if !near(b.TxtR1, 20) || !near(b.TxtR5, 40) || !near(b.TxtR10, 80) || !near(b.ImgR1, 0) || !near(b.ImgR5, 100) {
		t.Errorf("boundaries: %+v", b)
	}

	// Sparse rows: image 1 keeps its top 2 texts (0, 1); its correct text 2
	// falls to FillScore, tied with texts 3 and 4, and comes first of them.
	// Image 2 keeps texts 0 and 1; text 2 (FillScore, lower index) comes
	// before its correct text 3.
	sparse := []TopK{SelectTopK(i2t[0], 2), SelectTopK(i2t[1], 2), SelectTopK(i2t[2], 2)}
	rs, err := TopKRanks(sparse, 5, img2txt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 2, 3}; !equalInts(rs, want) {
		t.Errorf("top-2 ranks %v, want %v", rs, want)
	}
	if _, err := Rank([]float32{1, 2}, nil); err == nil {
		t.Error("a query without correct items must be an error")
	}
	if _, err := Rank([]float32{1, 2}, []int{2}); err == nil {
		t.Error("a correct item outside the row must be an error")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SelectTopK equals a full sort (ties: lower index first), and TopKRanks
// equals Ranks of the densified rows.
func TestSelectTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(40)
		row := make([]float32, n)
		for i := range row {
			row[i] = float32(rng.IntN(8)) // many ties
		}
		k := rng.IntN(n + 3)
		got := SelectTopK(row, k)
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return row[order[a]] > row[order[b]] })
		want := order[:min(k, n)]
		if !equalInts(got.Index, want) {
			t.Fatalf("trial %d: top-%d of %v = %v, want %v", trial, k, row, got.Index, want)
		}
		for r, j := range got.Index {
			if got.Score[r] != row[j] {
				t.Fatalf("trial %d: score %v at %d, row has %v", trial, got.Score[r], j, row[j])
			}
		}
		// Shuffle and re-sort.
		sh := TopK{Index: append([]int(nil), got.Index...), Score: append([]float32(nil), got.Score...)}
		rng.Shuffle(len(sh.Index), func(a, b int) {
			sh.Index[a], sh.Index[b] = sh.Index[b], sh.Index[a]
			sh.Score[a], sh.Score[b] = sh.Score[b], sh.Score[a]
		})
		if s := SortTopK(sh); !equalInts(s.Index, got.Index) {
			t.Fatalf("trial %d: SortTopK %v, want %v", trial, s.Index, got.Index)
		}
		correct := []int{rng.IntN(n)}
		dense, _ := Rank(got.Dense(n, FillScore), correct)
		sparse, err := TopKRanks([]TopK{got}, n, [][]int{correct})
		if err != nil || sparse[0] != dense {
			t.Fatalf("trial %d: sparse rank %v (%v), dense %d", trial, sparse, err, dense)
		}
	}
}
