package augment

import (
	"fmt"
	"math"
	"math/rand/v2"

	"blip/data/preprocess"
)

// Box is a crop window: top row I, left column J, height H, width W (the
// order of torchvision's get_params).
type Box struct{ I, J, H, W int }

// RandomResizedCrop is torchvision's transform of that name with bicubic
// interpolation.
type RandomResizedCrop struct {
	Size               int
	MinScale, MaxScale float64
	MinRatio, MaxRatio float64
	Filter             preprocess.Filter
	Attempts           int // 10 in torchvision
}

// NewRandomResizedCrop returns the crop BLIP uses: scale (minScale, 1),
// ratio (3/4, 4/3), bicubic.
func NewRandomResizedCrop(size int, minScale float64) RandomResizedCrop {
	return RandomResizedCrop{
		Size: size, MinScale: minScale, MaxScale: 1,
		MinRatio: 3.0 / 4.0, MaxRatio: 4.0 / 3.0,
		Filter: preprocess.Bicubic, Attempts: 10,
	}
}

// roundHalfEven is Python 3's round() to an int.
func roundHalfEven(x float64) int { return int(math.RoundToEven(x)) }

// uniform draws from U[a, b) as torch's uniform_ (in float64 here).
func uniform(r *rand.Rand, a, b float64) float64 { return a + (b-a)*r.Float64() }

// Params picks the crop box of an image of width x height with
// torchvision's algorithm: up to Attempts draws of a target area
// (uniform scale) and a log-uniform aspect ratio, accepted when the rounded
// box fits; then the central-crop fallback (the whole image clamped to the
// ratio range).
func (c RandomResizedCrop) Params(width, height int, r *rand.Rand) Box {
	area := float64(height) * float64(width)
	logLo, logHi := math.Log(c.MinRatio), math.Log(c.MaxRatio)
	for a := 0; a < c.Attempts; a++ {
		target := area * uniform(r, c.MinScale, c.MaxScale)
		ar := math.Exp(uniform(r, logLo, logHi))
		w := roundHalfEven(math.Sqrt(target * ar))
		h := roundHalfEven(math.Sqrt(target / ar))
		if 0 < w && w <= width && 0 < h && h <= height {
			i := r.IntN(height - h + 1)
			j := r.IntN(width - w + 1)
			return Box{I: i, J: j, H: h, W: w}
		}
	}
	return c.Fallback(width, height)
}

// Fallback is torchvision's central crop used after the failed attempts.
func (c RandomResizedCrop) Fallback(width, height int) Box {
	in := float64(width) / float64(height)
	var w, h int
	switch {
	case in < math.Min(c.MinRatio, c.MaxRatio):
		w = width
		h = roundHalfEven(float64(w) / math.Min(c.MinRatio, c.MaxRatio))
	case in > math.Max(c.MinRatio, c.MaxRatio):
		h = height
		w = roundHalfEven(float64(h) * math.Max(c.MinRatio, c.MaxRatio))
	default:
		w, h = width, height
	}
	return Box{I: (height - h) / 2, J: (width - w) / 2, H: h, W: w}
}

// Apply draws a box, crops it and resizes it to Size x Size with Pillow's
// filter (F.resized_crop on a PIL image).
func (c RandomResizedCrop) Apply(img *preprocess.RGB, r *rand.Rand) (*preprocess.RGB, error) {
	if c.Size <= 0 {
		return nil, fmt.Errorf("augment: crop size %d must be positive", c.Size)
	}
	b := c.Params(img.W, img.H, r)
	return preprocess.Resize(Crop(img, b), c.Size, c.Size, c.Filter)
}

// Crop copies the box out of img (Pillow's crop; the box must lie inside).
func Crop(img *preprocess.RGB, b Box) *preprocess.RGB {
	out := preprocess.NewRGB(b.W, b.H)
	for y := 0; y < b.H; y++ {
		s := 3 * ((b.I+y)*img.W + b.J)
		copy(out.Pix[3*y*b.W:3*(y+1)*b.W], img.Pix[s:s+3*b.W])
	}
	return out
}

// HFlip mirrors the image left to right.
func HFlip(img *preprocess.RGB) *preprocess.RGB {
	out := preprocess.NewRGB(img.W, img.H)
	for y := 0; y < img.H; y++ {
		for x := 0; x < img.W; x++ {
			s := 3 * (y*img.W + x)
			d := 3 * (y*img.W + img.W - 1 - x)
			copy(out.Pix[d:d+3], img.Pix[s:s+3])
		}
	}
	return out
}
