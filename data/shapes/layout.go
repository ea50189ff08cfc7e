package shapes

import "math"

// Object sizes and placement, as fractions of a grid cell (a third of the
// image side). Sizes vary a little within each class; the gap between the
// classes (0.52 to 0.80) keeps small and large apart at a glance.
const (
	smallFrac, smallSpread = 0.46, 0.06 // small: 0.46 .. 0.52 of a cell
	largeFrac, largeSpread = 0.80, 0.06 // large: 0.80 .. 0.86 of a cell
	// cellMargin is kept free on each side of an object inside its cell,
	// so neighbours are at least 2 margins apart and no object touches the
	// image border.
	cellMargin = 0.06
	// jitterTries is how often a layout's random offsets are redrawn
	// before falling back to centred objects, whose relations always hold.
	jitterTries = 32
	// quantum rounds coordinates to 1/16 px so the attribute files hold
	// short, exactly representable numbers.
	quantum = 1.0 / 16
)

// positionCell is the grid cell (row, column) of each single-object
// position.
var positionCell = map[Position][2]int{
	Left: {1, 0}, Right: {1, 2}, Top: {0, 1}, Bottom: {2, 1}, Center: {1, 1},
}

// cellSets[n] lists every set of n grid cells with no two on a common
// diagonal (and none shared), so each pair of cells is in one row, one
// column, or a knight's move apart, whose offset ratio is at least 2.
var cellSets = buildCellSets()

func buildCellSets() [][][][2]int {
	sets := make([][][][2]int, MaxObjectsLimit+1)
	var cells [][2]int
	for r := 0; r < GridCells; r++ {
		for c := 0; c < GridCells; c++ {
			cells = append(cells, [2]int{r, c})
		}
	}
	var rec func(start int, cur [][2]int)
	rec = func(start int, cur [][2]int) {
		if len(cur) > 0 {
			sets[len(cur)] = append(sets[len(cur)], append([][2]int(nil), cur...))
		}
		if len(cur) == MaxObjectsLimit {
			return
		}
		for i := start; i < len(cells); i++ {
			ok := true
			for _, p := range cur {
				dr, dc := abs(p[0]-cells[i][0]), abs(p[1]-cells[i][1])
				if dr == dc { // same cell (0, 0) or a diagonal
					ok = false
					break
				}
			}
			if ok {
				rec(i+1, append(cur, cells[i]))
			}
		}
	}
	rec(0, nil)
	return sets
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// sampleObjects draws n objects with distinct (size, colour, shape), without
// replacement from every such triple, so it never loops.
func sampleObjects(c *Config, r *rng, n int) []Object {
	var all []Object
	for _, sz := range allSizes {
		for _, col := range c.colors() {
			for _, sh := range c.shapes() {
				all = append(all, Object{Size: sz, Color: col, Shape: sh})
			}
		}
	}
	out := make([]Object, n)
	for i := range out {
		j := i + r.intn(len(all)-i)
		all[i], all[j] = all[j], all[i]
		out[i] = all[i]
	}
	return out
}

// layout draws the objects of one image and places them: a single object
// in the cell of a random position, several in a random diagonal-free set of
// cells, each with a random offset inside its cell. Objects are returned in
// a random order, which becomes the caption chain.
func layout(c *Config, r *rng) []SceneObject {
	n := 1 + r.intn(c.MaxObjects)
	objs := sampleObjects(c, r, n)
	var cells [][2]int
	if n == 1 {
		p := pick(r, allPositions)
		objs[0].Position = p
		cells = [][2]int{positionCell[p]}
	} else {
		set := pick(r, cellSets[n])
		for _, k := range r.perm(n) {
			cells = append(cells, set[k])
		}
	}
	cell := float64(c.Size) / GridCells
	out := make([]SceneObject, n)
	sides := make([]float64, n)
	for i := range out {
		frac, spread := smallFrac, smallSpread
		if objs[i].Size == Large {
			frac, spread = largeFrac, largeSpread
		}
		sides[i] = quantize(cell * r.uniform(frac, frac+spread))
		out[i] = SceneObject{Object: objs[i], Cell: cells[i]}
	}
	for try := 0; ; try++ {
		for i := range out {
			cx := (float64(cells[i][1]) + 0.5) * cell
			cy := (float64(cells[i][0]) + 0.5) * cell
			if try < jitterTries {
				room := math.Max(0, (cell-sides[i])/2-float64(cellMargin*cell))
				cx += r.uniform(-room, room)
				cy += r.uniform(-room, room)
			}
			place(&out[i], quantize(cx), quantize(cy), sides[i])
		}
		if try >= jitterTries || relationsClear(out) {
			return out
		}
	}
}

// place sets an object's centre and its box of the given side.
func place(o *SceneObject, cx, cy, side float64) {
	o.Center = [2]float64{cx, cy}
	h := float64(side / 2) // exact: side is a multiple of 1/16
	o.Box = Box{cx - h, cy - h, cx + h, cy + h}
}

// relationsClear reports whether every pair of objects has a relation.
func relationsClear(objs []SceneObject) bool {
	for i := range objs {
		for j := i + 1; j < len(objs); j++ {
			if _, ok := relationBetween(&objs[i], &objs[j]); !ok {
				return false
			}
		}
	}
	return true
}

func quantize(x float64) float64 { return math.Round(x/quantum) * quantum }

// chain returns the relations Objects[k] rel Objects[k+1].
func chain(objs []SceneObject) []Relation {
	rels := []Relation{} // [] rather than null in JSON
	for k := 0; k+1 < len(objs); k++ {
		rel, _ := relationBetween(&objs[k], &objs[k+1])
		rels = append(rels, Relation{A: k, Rel: rel, B: k + 1})
	}
	return rels
}
