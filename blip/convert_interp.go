package blip

import (
	"fmt"
	"math"
)

// interpolatePosEmbed resizes a ViT position embedding [1, 1+g*g, C] to
// [1, 1+n*n, C], as salesforce/BLIP's interpolate_pos_embed does when a
// checkpoint is loaded at another image size: the [CLS] row is kept and the
// g x g grid of patch rows is resized with bicubic interpolation
// (torch.nn.functional.interpolate, mode "bicubic", align_corners=False,
// A = -0.75, edges clamped). It is computed in float64 and rounded once, so
// results may differ from torch's float32 kernel in the last bit.
func interpolatePosEmbed(src []float32, oldTokens, newTokens, c int) ([]float32, error) {
	g := int(math.Round(math.Sqrt(float64(oldTokens - 1))))
	n := int(math.Round(math.Sqrt(float64(newTokens - 1))))
	if g*g != oldTokens-1 || n*n != newTokens-1 || g == 0 {
		return nil, fmt.Errorf("position embedding of %d tokens cannot be resized to %d: patch grids must be square", oldTokens, newTokens)
	}
	if len(src) != oldTokens*c {
		return nil, fmt.Errorf("position embedding has %d values, want %d", len(src), oldTokens*c)
	}
	out := make([]float32, newTokens*c)
	copy(out[:c], src[:c]) // [CLS]
	grid := src[c:]
	// Taps and weights along one axis; the grid is square, so both axes
	// share them.
	idx, w := bicubicTaps(g, n)
	for oy := range n {
		for ox := range n {
			dst := out[c+(oy*n+ox)*c : c+(oy*n+ox+1)*c]
			for ch := range c {
				var acc float64
				for i := range 4 {
					var row float64
					for j := range 4 {
						row += w[ox][j] * float64(grid[(idx[oy][i]*g+idx[ox][j])*c+ch])
					}
					acc += w[oy][i] * row
				}
				dst[ch] = float32(acc)
			}
		}
	}
	return out, nil
}

// bicubicTaps returns, for each of out output positions, the 4 clamped input
// indices and their cubic-convolution weights, with torch's source-index
// rule for align_corners=False: x = (o + 0.5) * in/out - 0.5, not clamped.
func bicubicTaps(in, out int) ([][4]int, [][4]float64) {
	const a = -0.75
	cubic1 := func(x float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }   // |x| <= 1
	cubic2 := func(x float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a } // 1 < |x| < 2
	clamp := func(i int) int { return min(max(i, 0), in-1) }
	scale := float64(in) / float64(out)
	idx := make([][4]int, out)
	w := make([][4]float64, out)
	for o := range out {
		x := (float64(o)+0.5)*scale - 0.5
		x0 := math.Floor(x)
		t := x - x0
		i0 := int(x0)
		idx[o] = [4]int{clamp(i0 - 1), clamp(i0), clamp(i0 + 1), clamp(i0 + 2)}
		w[o] = [4]float64{cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)}
	}
	return idx, w
}
