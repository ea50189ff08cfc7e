package shapes

// Shape is the kind of an object, written as its caption noun.
type Shape string

// The shapes of the world. Rotation is never applied: a rotated square
// would be a diamond, so every shape is drawn upright.
const (
	Circle   Shape = "circle"
	Square   Shape = "square"
	Triangle Shape = "triangle"
	Star     Shape = "star"
	Diamond  Shape = "diamond"
	Cross    Shape = "cross"
	Heart    Shape = "heart"
	Hexagon  Shape = "hexagon"
)

var allShapes = []Shape{Circle, Square, Triangle, Star, Diamond, Cross, Heart, Hexagon}

// AllShapes returns every shape of the world, in a fixed order.
func AllShapes() []Shape { return append([]Shape(nil), allShapes...) }

// Valid reports whether s is a shape of the world.
func (s Shape) Valid() bool { return contains(allShapes, s) }

// Plural is the noun's plural, used by counting questions.
func (s Shape) Plural() string {
	if s == Cross {
		return "crosses"
	}
	return string(s) + "s"
}

// Color is an object colour, written as its caption adjective.
type Color string

// The colours of the world. They are at least 90 apart from each other in
// RGB and at least 70 from every background (see render.go).
const (
	Red    Color = "red"
	Green  Color = "green"
	Blue   Color = "blue"
	Yellow Color = "yellow"
	Purple Color = "purple"
	Orange Color = "orange"
	Pink   Color = "pink"
	Brown  Color = "brown"
	White  Color = "white"
	Black  Color = "black"
)

var allColors = []Color{Red, Green, Blue, Yellow, Purple, Orange, Pink, Brown, White, Black}

var colorRGB = map[Color][3]uint8{
	Red:    {215, 35, 35},
	Green:  {35, 165, 60},
	Blue:   {35, 75, 220},
	Yellow: {250, 220, 40},
	Purple: {135, 55, 185},
	Orange: {245, 130, 20},
	Pink:   {245, 130, 195},
	Brown:  {110, 60, 20},
	White:  {250, 250, 250},
	Black:  {15, 15, 15},
}

// AllColors returns every colour of the world, in a fixed order.
func AllColors() []Color { return append([]Color(nil), allColors...) }

// Valid reports whether c is a colour of the world.
func (c Color) Valid() bool { return contains(allColors, c) }

// RGB is the colour's 8-bit sRGB value (black for an unknown colour).
func (c Color) RGB() [3]uint8 { return colorRGB[c] }

// Size is an object's size class. A large object is about 1.7 times as
// wide as a small one (three times the area), so the two never blur.
type Size string

// The two sizes.
const (
	Small Size = "small"
	Large Size = "large"
)

var allSizes = []Size{Small, Large}

// AllSizes returns both sizes.
func AllSizes() []Size { return append([]Size(nil), allSizes...) }

// Valid reports whether s is a size of the world.
func (s Size) Valid() bool { return contains(allSizes, s) }

// Position is where the only object of a one-object image lies.
type Position string

// The five positions: the middle cell of each edge of the 3x3 layout grid,
// and its centre. Corners are never used, since "top left" would be both.
const (
	Left   Position = "left"
	Right  Position = "right"
	Top    Position = "top"
	Bottom Position = "bottom"
	Center Position = "center"
)

var allPositions = []Position{Left, Right, Top, Bottom, Center}

// AllPositions returns the five positions.
func AllPositions() []Position { return append([]Position(nil), allPositions...) }

// Valid reports whether p is a position of the world.
func (p Position) Valid() bool { return contains(allPositions, p) }

// Rel is a spatial relation "A rel B" between two objects.
type Rel string

// The four relations, as written in captions.
const (
	LeftOf  Rel = "left of"
	RightOf Rel = "right of"
	Above   Rel = "above"
	Below   Rel = "below"
)

var allRels = []Rel{LeftOf, RightOf, Above, Below}

// AllRels returns the four relations.
func AllRels() []Rel { return append([]Rel(nil), allRels...) }

// Valid reports whether r is a relation of the world.
func (r Rel) Valid() bool { return contains(allRels, r) }

// Inverse is the relation seen from the other object: A left of B is
// B right of A.
func (r Rel) Inverse() Rel {
	switch r {
	case LeftOf:
		return RightOf
	case RightOf:
		return LeftOf
	case Above:
		return Below
	case Below:
		return Above
	}
	return r
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
