package index

import (
	"container/heap"
	"sort"
)

// Hit is one search result: entry I with its cosine similarity.
type Hit struct {
	I     int
	Score float32
}

// Search returns the k entries whose vectors have the largest dot product
// with q (the cosine, for normalised vectors), best first; ties go to the
// lower index.
func (ix *Index) Search(q []float32, k int) []Hit {
	if k <= 0 || len(q) != ix.Dim {
		return nil
	}
	h := &minHeap{}
	for i := range ix.Entries {
		v := ix.Vector(i)
		var s float32
		for j, x := range q {
			s += x * v[j]
		}
		hit := Hit{i, s}
		if h.Len() < k {
			heap.Push(h, hit)
		} else if better(hit, (*h)[0]) {
			(*h)[0] = hit
			heap.Fix(h, 0)
		}
	}
	out := []Hit(*h)
	sort.Slice(out, func(a, b int) bool { return better(out[a], out[b]) })
	return out
}

// better orders hits by score, then by lower index.
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.I < b.I
}

// minHeap keeps the worst kept hit on top.
type minHeap []Hit

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(Hit)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
