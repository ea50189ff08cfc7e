package jpeg

import "math"

// floatIDCT is the textbook 2-D inverse DCT plus the level shift.
func floatIDCT(b block) [64]float64 {
	var out [64]float64
	c := func(u int) float64 {
		if u == 0 {
			return 1 / math.Sqrt2
		}
		return 1
	}
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			s := 0.0
			for v := 0; v < 8; v++ {
				for u := 0; u < 8; u++ {
					s += c(u) * c(v) * float64(b[v*8+u]) *
						math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) *
						math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
				}
			}
			out[y*8+x] = s/4 + 128
		}
	}
	return out
}
