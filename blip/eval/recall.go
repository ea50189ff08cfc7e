package eval

import (
	"container/heap"
	"fmt"
	"sort"
)

// FillScore is the score BLIP's retrieval evaluation gives every pair
// outside a query's top-k (score_matrix initialised to -100).
const FillScore = -100

// TopK is one query's retained gallery items with their scores.
type TopK struct {
	Index []int
	Score []float32
}

// Dense returns the query's full score row: FillScore everywhere but at
// the retained items.
func (t TopK) Dense(gallery int, fill float32) []float32 {
	row := make([]float32, gallery)
	for i := range row {
		row[i] = fill
	}
	for r, j := range t.Index {
		row[j] = t.Score[r]
	}
	return row
}

// better orders (score, index) pairs: higher score first, then lower
// index, the deterministic order every ranking here uses.
func better(sa float32, ia int, sb float32, ib int) bool {
	if sa != sb {
		return sa > sb
	}
	return ia < ib
}

// Rank returns the 0-based rank of the best-placed correct item of a score
// row, the items ordered by score descending (ties: lower index first), as
// itm_eval's np.where(np.argsort(score)[::-1] == i) minimised over the
// correct items (numpy breaks ties arbitrarily; this is deterministic).
func Rank(row []float32, correct []int) (int, error) {
	best := -1
	for _, c := range correct {
		if c < 0 || c >= len(row) {
			return 0, fmt.Errorf("eval: correct item %d outside a row of %d", c, len(row))
		}
		if best < 0 || better(row[c], c, row[best], best) {
			best = c
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("eval: a query has no correct item")
	}
	rank := 0
	for j, s := range row {
		if j != best && better(s, j, row[best], best) {
			rank++
		}
	}
	return rank, nil
}

// Ranks returns Rank of every row.
func Ranks(rows [][]float32, correct [][]int) ([]int, error) {
	if len(rows) != len(correct) {
		return nil, fmt.Errorf("eval: %d score rows for %d queries", len(rows), len(correct))
	}
	out := make([]int, len(rows))
	for q, row := range rows {
		r, err := Rank(row, correct[q])
		if err != nil {
			return nil, fmt.Errorf("eval: query %d: %w", q, err)
		}
		out[q] = r
	}
	return out, nil
}

// TopKRanks returns Rank of every query of a sparse score matrix (each
// row densified with FillScore, as BLIP's score_matrix).
func TopKRanks(rows []TopK, gallery int, correct [][]int) ([]int, error) {
	if len(rows) != len(correct) {
		return nil, fmt.Errorf("eval: %d score rows for %d queries", len(rows), len(correct))
	}
	out := make([]int, len(rows))
	for q, t := range rows {
		r, err := Rank(t.Dense(gallery, FillScore), correct[q])
		if err != nil {
			return nil, fmt.Errorf("eval: query %d: %w", q, err)
		}
		out[q] = r
	}
	return out, nil
}

// Recall holds BLIP's itm_eval result, in percent: text retrieval (image
// queries) and image retrieval (text queries) recall at 1, 5, 10, their
// means and the overall mean.
type Recall struct {
	TxtR1    float64 `json:"txt_r1"`
	TxtR5    float64 `json:"txt_r5"`
	TxtR10   float64 `json:"txt_r10"`
	TxtRMean float64 `json:"txt_r_mean"`
	ImgR1    float64 `json:"img_r1"`
	ImgR5    float64 `json:"img_r5"`
	ImgR10   float64 `json:"img_r10"`
	ImgRMean float64 `json:"img_r_mean"`
	RMean    float64 `json:"r_mean"`
}

// recallAt is the percentage of ranks below k.
func recallAt(ranks []int, k int) float64 {
	if len(ranks) == 0 {
		return 0
	}
	n := 0
	for _, r := range ranks {
		if r < k {
			n++
		}
	}
	return 100 * float64(n) / float64(len(ranks))
}

// RecallFromRanks computes itm_eval's metrics from the rank of the first
// correct text of every image (i2t) and of the image of every text (t2i).
func RecallFromRanks(i2t, t2i []int) Recall {
	r := Recall{
		TxtR1: recallAt(i2t, 1), TxtR5: recallAt(i2t, 5), TxtR10: recallAt(i2t, 10),
		ImgR1: recallAt(t2i, 1), ImgR5: recallAt(t2i, 5), ImgR10: recallAt(t2i, 10),
	}
	r.TxtRMean = (r.TxtR1 + r.TxtR5 + r.TxtR10) / 3
	r.ImgRMean = (r.ImgR1 + r.ImgR5 + r.ImgR10) / 3
	r.RMean = (r.TxtRMean + r.ImgRMean) / 2
	return r
}

// ITMEval is BLIP's itm_eval on dense score matrices: scoresI2T (images x
// texts), scoresT2I (texts x images), img2txt the texts of each image and
// txt2img the image of each text.
func ITMEval(scoresI2T, scoresT2I [][]float32, img2txt [][]int, txt2img []int) (Recall, error) {
	i2t, err := Ranks(scoresI2T, img2txt)
	if err != nil {
		return Recall{}, fmt.Errorf("eval: image to text: %w", err)
	}
	correct := make([][]int, len(txt2img))
	for j, i := range txt2img {
		correct[j] = []int{i}
	}
	t2i, err := Ranks(scoresT2I, correct)
	if err != nil {
		return Recall{}, fmt.Errorf("eval: text to image: %w", err)
	}
	return RecallFromRanks(i2t, t2i), nil
}

// topKHeap is a min-heap (worst on top) of row positions.
type topKHeap struct {
	row []float32
	idx []int
}

func (h *topKHeap) Len() int { return len(h.idx) }
func (h *topKHeap) Less(a, b int) bool {
	return better(h.row[h.idx[b]], h.idx[b], h.row[h.idx[a]], h.idx[a])
}
func (h *topKHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *topKHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *topKHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

// SelectTopK returns the k best items of row (score descending, ties:
// lower index first), as torch.topk; k is clamped to len(row).
func SelectTopK(row []float32, k int) TopK {
	k = min(max(k, 0), len(row))
	h := &topKHeap{row: row, idx: make([]int, 0, k+1)}
	for j := range row {
		if h.Len() < k {
			heap.Push(h, j)
			continue
		}
		if k > 0 && better(row[j], j, row[h.idx[0]], h.idx[0]) {
			h.idx[0] = j
			heap.Fix(h, 0)
		}
	}
	out := TopK{Index: make([]int, h.Len()), Score: make([]float32, h.Len())}
	for r := h.Len() - 1; r >= 0; r-- {
		j := heap.Pop(h).(int)
		out.Index[r], out.Score[r] = j, row[j]
	}
	return out
}

// SortTopK orders t's items by score descending (ties: lower index first).
func SortTopK(t TopK) TopK {
	order := make([]int, len(t.Index))
	for r := range order {
		order[r] = r
	}
	sort.Slice(order, func(a, b int) bool {
		ra, rb := order[a], order[b]
		return better(t.Score[ra], t.Index[ra], t.Score[rb], t.Index[rb])
	})
	out := TopK{Index: make([]int, len(order)), Score: make([]float32, len(order))}
	for r, o := range order {
		out.Index[r], out.Score[r] = t.Index[o], t.Score[o]
	}
	return out
}
