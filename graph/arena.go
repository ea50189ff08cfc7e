package graph

import (
	"sort"
)

// Memory planning. Every tensor whose storage the plan owns (activations,
// gradients, scratch, inputs, constants) is a block with a lifetime: the
// steps (nodes, in execution order) from its first writer to its last
// reader. Inputs and constants live from before the first step to after the
// last; outputs to after the last. Blocks whose lifetimes do not overlap may
// share memory, and "greedy by size" offset assignment (as in TFLite's
// arena planner: largest block first, at the lowest offset where it
// overlaps no placed block of overlapping lifetime) packs them into one
// arena, or into several when one would exceed the backend's buffer limit.

// blockAlign is the alignment of every block in bytes: enough for vec4
// access and cache lines, and far below the sizes of the tensors that
// matter.
const blockAlign = 256

type block struct {
	root        *Tensor
	size        int64 // bytes, a multiple of blockAlign
	first, last int   // inclusive steps
	arena       int
	off         int64 // bytes into the arena
}

func (a *block) overlaps(b *block) bool {
	return a.first <= b.last && b.first <= a.last
}

// place assigns every block an arena and an offset and returns the size of
// each arena. No arena exceeds limit unless a single block does.
func place(blocks []*block, limit int64) []int64 {
	order := append([]*block(nil), blocks...)
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].size != order[j].size {
			return order[i].size > order[j].size
		}
		return order[i].first < order[j].first
	})
	var arenas [][]*block // placed blocks per arena, by offset
	var sizes []int64
	for _, b := range order {
		placed := false
		for ai := range arenas {
			off := lowestFit(arenas[ai], b)
			if off+b.size > limit && off > 0 {
				continue
			}
			b.arena, b.off = ai, off
			arenas[ai] = insertByOffset(arenas[ai], b)
			sizes[ai] = max(sizes[ai], off+b.size)
			placed = true
			break
		}
		if !placed {
			b.arena, b.off = len(arenas), 0
			arenas = append(arenas, []*block{b})
			sizes = append(sizes, b.size)
		}
	}
	return sizes
}

// lowestFit is the lowest offset at which b overlaps no block of placed
// (sorted by offset) that is live at the same time.
func lowestFit(placed []*block, b *block) int64 {
	off := int64(0)
	for _, p := range placed {
		if !p.overlaps(b) {
			continue
		}
		if p.off >= off+b.size {
			break // the gap before p fits b
		}
		off = max(off, p.off+p.size)
	}
	return off
}

func insertByOffset(s []*block, b *block) []*block {
	i := sort.Search(len(s), func(i int) bool { return s[i].off > b.off })
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = b
	return s
}
