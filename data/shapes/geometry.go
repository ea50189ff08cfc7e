package shapes

import "math"

// Shape outlines live in the unit box [-1, 1]^2 of their object's bounding
// square, u to the right and v downwards. Each outline stays inside the
// box, so an object's drawing never leaves its Box.

// point is a polygon vertex in unit-box coordinates.
type point struct{ u, v float64 }

var (
	// Near-equilateral, pointing up, centred vertically.
	trianglePoly = []point{{0, -0.9}, {0.98, 0.78}, {-0.98, 0.78}}
	// Five points, one up; shifted down so its extent is centred.
	starPoly = starPolygon(1, 0.42, 0.095)
	// Flat top and bottom, which tells it from a circle at small sizes.
	hexagonPoly = regularPolygon(6, 0.97, 0)
)

// starPolygon builds a five-pointed star with outer radius ro, inner
// radius ri, moved down by dv.
func starPolygon(ro, ri, dv float64) []point {
	var p []point
	for k := 0; k < 10; k++ {
		a := -math.Pi/2 + float64(k)*math.Pi/5
		r := ro
		if k%2 == 1 {
			r = ri
		}
		p = append(p, point{r * math.Cos(a), r*math.Sin(a) + dv})
	}
	return p
}

// regularPolygon builds an n-gon of circumradius r, first vertex at angle a0.
func regularPolygon(n int, r, a0 float64) []point {
	var p []point
	for k := 0; k < n; k++ {
		a := a0 + 2*math.Pi*float64(k)/float64(n)
		p = append(p, point{r * math.Cos(a), r * math.Sin(a)})
	}
	return p
}

// insidePolygon is the even-odd rule.
func insidePolygon(poly []point, u, v float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.v > v) != (b.v > v) && u < (b.u-a.u)*(v-a.v)/(b.v-a.v)+a.u {
			in = !in
		}
	}
	return in
}

// inside reports whether unit-box point (u, v) lies in the shape. Outlines
// are scaled to look about equally heavy: a square filling its whole box
// would outweigh a circle.
func inside(s Shape, u, v float64) bool {
	if u < -1 || u > 1 || v < -1 || v > 1 {
		return false
	}
	switch s {
	case Circle:
		return u*u+v*v <= 0.96*0.96
	case Square:
		return math.Abs(u) <= 0.8 && math.Abs(v) <= 0.8
	case Triangle:
		return insidePolygon(trianglePoly, u, v)
	case Star:
		return insidePolygon(starPoly, u, v)
	case Diamond:
		return math.Abs(u)/0.75+math.Abs(v)/0.98 <= 1
	case Cross:
		const arm, reach = 0.3, 0.92
		au, av := math.Abs(u), math.Abs(v)
		return (au <= arm && av <= reach) || (av <= arm && au <= reach)
	case Heart:
		// (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up; the curve spans
		// x in [-1.139, 1.139] and y in [-1, 1.236], mapped onto the box
		// with 3% to spare.
		x := u * 1.139 / 0.97
		y := 0.118 - v*1.118/0.97
		q := x*x + y*y - 1
		return q*q*q-x*x*y*y*y <= 0
	case Hexagon:
		return insidePolygon(hexagonPoly, u, v)
	}
	return false
}
