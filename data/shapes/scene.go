package shapes

import (
	"math"
	"slices"
	"strings"
)

// Object is one object as a caption states it. Position is set only when
// the object is the only one of its image; with two or more objects
// relations place them instead.
type Object struct {
	Size     Size     `json:"size"`
	Color    Color    `json:"color"`
	Shape    Shape    `json:"shape"`
	Position Position `json:"position,omitempty"`
}

// Phrase is the object's noun phrase, "a small red circle".
func (o Object) Phrase() string { return withArticle(o.Name()) }

// Name is the object without article, "small red circle". Objects of one
// image have distinct names, so a name identifies an object.
// Unstated attributes (in a parsed caption) are left out, and an unstated
// shape reads "object".
func (o Object) Name() string {
	return filter{size: o.Size, color: o.Color, shape: o.Shape}.text()
}

// Relation states Objects[A] Rel Objects[B] of a description or scene.
type Relation struct {
	A   int `json:"a"`
	Rel Rel `json:"relation"`
	B   int `json:"b"`
}

// Description is what a caption says about an image: its objects and,
// with several objects, relations between them.
type Description struct {
	Objects   []Object   `json:"objects"`
	Relations []Relation `json:"relations,omitempty"`
}

// Key is a canonical text of the description: equal keys mean equal
// statements however the caption was worded (objects in any order, a chain
// read forwards or backwards, "right of" as the inverse "left of").
func (d Description) Key() string {
	objs := make([]string, len(d.Objects))
	for i, o := range d.Objects {
		objs[i] = o.Name()
		if o.Position != "" {
			objs[i] += " @" + string(o.Position)
		}
	}
	var rels []string
	for _, r := range d.Relations {
		if r.A < 0 || r.B < 0 || r.A >= len(d.Objects) || r.B >= len(d.Objects) {
			rels = append(rels, "?")
			continue
		}
		a, rel, b := r.A, r.Rel, r.B
		if rel == RightOf || rel == Below { // one direction per axis
			a, rel, b = b, rel.Inverse(), a
		}
		rels = append(rels, d.Objects[a].Name()+" <"+string(rel)+"> "+d.Objects[b].Name())
	}
	sorted := slices.Clone(objs)
	slices.Sort(sorted)
	slices.Sort(rels)
	rels = slices.Compact(rels)
	return strings.Join(sorted, "; ") + " | " + strings.Join(rels, "; ")
}

// Box is an axis-aligned box in pixels, [x0, y0, x1, y1], y pointing down.
// An object's drawing lies inside its box.
type Box [4]float64

// Overlaps reports whether two boxes share interior points.
func (b Box) Overlaps(c Box) bool {
	return b[0] < c[2] && c[0] < b[2] && b[1] < c[3] && c[1] < b[3]
}

// Inside reports whether b lies within a w x h image.
func (b Box) Inside(w, h int) bool {
	return b[0] >= 0 && b[1] >= 0 && b[2] <= float64(w) && b[3] <= float64(h)
}

// SceneObject is an object as drawn: its attributes and where it lies.
type SceneObject struct {
	Object
	Box    Box        `json:"bbox"`   // the square the shape is drawn in
	Center [2]float64 `json:"center"` // x, y
	Cell   [2]int     `json:"cell"`   // row, column of the layout grid
}

// Scene is the ground truth of one image.
type Scene struct {
	ImageID int    `json:"image_id"`
	Image   string `json:"image"` // path relative to the dataset folder
	Split   string `json:"split"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	// Background is the base colour; texture and noise vary around it.
	Background  [3]uint8 `json:"background"`
	TextureSeed uint64   `json:"texture_seed"`
	Noise       float64  `json:"noise"`
	// Objects are in caption order; Relations is the chain Objects[k] rel
	// Objects[k+1] that every caption of the image states.
	Objects   []SceneObject `json:"objects"`
	Relations []Relation    `json:"relations"`
	Captions  []string      `json:"captions"`
	Questions []Question    `json:"-"` // written to vqa_{split}.json
}

// Description is what the image's captions state: every object (with its
// position when alone) and the chain of relations.
func (s *Scene) Description() Description {
	d := Description{Objects: make([]Object, len(s.Objects))}
	for i, o := range s.Objects {
		d.Objects[i] = o.Object
	}
	d.Relations = slices.Clone(s.Relations)
	return d
}

// relRatio is how much larger the offset along one axis must be than along
// the other for a relation to hold: the centres lie within 33.7 degrees of
// the axis.
const relRatio = 1.5

// RelationOf is the relation of object a to object b ("a is <rel> b"),
// computed from the drawing: along the dominant axis the boxes must be
// disjoint and the centre offset at least relRatio times the offset along
// the other axis. ok is false when neither axis dominates, which the
// generator never lets happen between objects of one image.
func (s *Scene) RelationOf(a, b int) (rel Rel, ok bool) {
	if a < 0 || b < 0 || a >= len(s.Objects) || b >= len(s.Objects) || a == b {
		return "", false
	}
	return relationBetween(&s.Objects[a], &s.Objects[b])
}

func relationBetween(a, b *SceneObject) (Rel, bool) {
	dx := b.Center[0] - a.Center[0]
	dy := b.Center[1] - a.Center[1]
	switch {
	case math.Abs(dx) >= relRatio*math.Abs(dy) && a.Box[2] <= b.Box[0]:
		return LeftOf, true
	case math.Abs(dx) >= relRatio*math.Abs(dy) && b.Box[2] <= a.Box[0]:
		return RightOf, true
	case math.Abs(dy) >= relRatio*math.Abs(dx) && a.Box[3] <= b.Box[1]:
		return Above, true
	case math.Abs(dy) >= relRatio*math.Abs(dx) && b.Box[3] <= a.Box[1]:
		return Below, true
	}
	return "", false
}
