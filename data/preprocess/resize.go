package preprocess

import (
	"fmt"
	"math"
)

// Filter is a Pillow resampling filter, numbered as PIL.Image.Resampling
// (and as "resample" in HF preprocessor configs).
type Filter int

// Pillow's filters.
const (
	Nearest  Filter = 0
	Lanczos  Filter = 1
	Bilinear Filter = 2
	Bicubic  Filter = 3
	Box      Filter = 4
	Hamming  Filter = 5
)

// String returns Pillow's name of the filter.
func (f Filter) String() string {
	switch f {
	case Nearest:
		return "NEAREST"
	case Lanczos:
		return "LANCZOS"
	case Bilinear:
		return "BILINEAR"
	case Bicubic:
		return "BICUBIC"
	case Box:
		return "BOX"
	case Hamming:
		return "HAMMING"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// kernel returns the filter function and its support radius at scale 1.
func (f Filter) kernel() (func(float64) float64, float64, bool) {
	switch f {
	case Box:
		return boxKernel, 0.5, true
	case Bilinear:
		return bilinearKernel, 1, true
	case Hamming:
		return hammingKernel, 1, true
	case Bicubic:
		return bicubicKernel, 2, true
	case Lanczos:
		return lanczosKernel, 3, true
	}
	return nil, 0, false
}

// The kernels are written with explicit float64 conversions around products
// so that the compiler cannot fuse them into FMAs: Pillow's C code rounds
// every operation, and one ulp can flip a rounded 8-bit result.

func boxKernel(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

func bilinearKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

func hammingKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x == 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	x = float64(x * math.Pi)
	// Pillow writes the constants as float literals (0.54f, 0.46f).
	return float64(math.Sin(x)/x) * float64(float64(float32(0.54))+float64(float64(float32(0.46))*math.Cos(x)))
}

// bicubicKernel is Keys' cubic convolution with a = -0.5.
func bicubicKernel(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return float64(float64(float64(float64((a+2)*x)-(a+3))*x)*x) + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(float64(x-5)*x)+8)*x)-4) * a
	}
	return 0
}

func sincKernel(x float64) float64 {
	if x == 0 {
		return 1
	}
	x = float64(x * math.Pi)
	return math.Sin(x) / x
}

func lanczosKernel(x float64) float64 {
	if -3 <= x && x < 3 {
		return float64(sincKernel(x) * sincKernel(x/3))
	}
	return 0
}

// precisionBits is Pillow's fixed-point precision for 8-bit resampling
// (32 bits minus 8 for the sample minus 2 for overshoot).
const precisionBits = 32 - 8 - 2

// coeffs holds, for each output position, the first input index, the
// number of taps and the fixed-point weights (ksize per position).
type coeffs struct {
	ksize  int
	bounds []int // pairs (xmin, n)
	k      []int32
}

// precompute computes Pillow's resampling weights for resizing inSize
// samples to outSize over the input interval [in0, in1).
func precompute(inSize int, in0, in1 float64, outSize int, filter func(float64) float64, support float64) coeffs {
	scale := (in1 - in0) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support = float64(support * filterscale)
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, bounds: make([]int, 2*outSize), k: make([]int32, outSize*ksize)}
	w := make([]float64, ksize)
	inv := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := in0 + float64((float64(xx)+0.5)*scale)
		// Pillow truncates toward zero, then clamps.
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			v := filter(float64(float64(x+xmin)-center+0.5) * inv)
			w[x] = v
			ww += v
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				w[x] /= ww
			}
			// Round half away from zero into fixed point, as Pillow does.
			f := float64(w[x] * (1 << precisionBits))
			if w[x] < 0 {
				c.k[xx*ksize+x] = int32(-0.5 + f)
			} else {
				c.k[xx*ksize+x] = int32(0.5 + f)
			}
		}
		c.bounds[2*xx] = xmin
		c.bounds[2*xx+1] = xmax
	}
	return c
}

// clipFixed turns an accumulated fixed-point sum into a byte.
func clipFixed(ss int32) uint8 {
	v := ss >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Resize resizes an RGB image to w x h with a Pillow filter, reproducing
// Image.resize((w, h), filter) bit for bit: separable passes (horizontal
// first, each skipped when that dimension is unchanged) over 8-bit data,
// with Pillow's fixed-point weights and rounding.
func Resize(src *RGB, w, h int, f Filter) (*RGB, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("preprocess: resize to %dx%d: size must be positive", w, h)
	}
	if src.W <= 0 || src.H <= 0 {
		return nil, fmt.Errorf("preprocess: cannot resize an empty %dx%d image", src.W, src.H)
	}
	if w == src.W && h == src.H {
		return &RGB{W: w, H: h, Pix: append([]uint8(nil), src.Pix...)}, nil
	}
	if f == Nearest {
		return resizeNearest(src, w, h), nil
	}
	kern, support, ok := f.kernel()
	if !ok {
		return nil, fmt.Errorf("preprocess: unsupported resampling filter %v", f)
	}
	vert := precompute(src.H, 0, float64(src.H), h, kern, support)
	img := src
	if w != src.W {
		horiz := precompute(src.W, 0, float64(src.W), w, kern, support)
		// Only the rows the vertical pass reads are computed, as in Pillow
		// (this changes nothing in the values).
		first := vert.bounds[0]
		last := vert.bounds[2*h-2] + vert.bounds[2*h-1]
		if h == src.H {
			first, last = 0, src.H
		}
		img = resampleHorizontal(src, w, first, last, horiz)
		if h != src.H {
			for i := 0; i < h; i++ {
				vert.bounds[2*i] -= first
			}
		}
	}
	if h != src.H {
		img = resampleVertical(img, h, vert)
	}
	return img, nil
}

// resampleHorizontal resizes rows [y0, y1) of src to width w.
func resampleHorizontal(src *RGB, w, y0, y1 int, c coeffs) *RGB {
	out := NewRGB(w, y1-y0)
	for y := y0; y < y1; y++ {
		in := src.Pix[3*y*src.W : 3*(y+1)*src.W]
		o := out.Pix[3*(y-y0)*w : 3*(y-y0+1)*w]
		for xx := 0; xx < w; xx++ {
			xmin, n := c.bounds[2*xx], c.bounds[2*xx+1]
			k := c.k[xx*c.ksize : xx*c.ksize+n]
			ss0, ss1, ss2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			p := in[3*xmin:]
			for x, kv := range k {
				ss0 += int32(p[3*x]) * kv
				ss1 += int32(p[3*x+1]) * kv
				ss2 += int32(p[3*x+2]) * kv
			}
			o[3*xx], o[3*xx+1], o[3*xx+2] = clipFixed(ss0), clipFixed(ss1), clipFixed(ss2)
		}
	}
	return out
}

// resampleVertical resizes src to height h.
func resampleVertical(src *RGB, h int, c coeffs) *RGB {
	w := src.W
	out := NewRGB(w, h)
	stride := 3 * w
	for yy := 0; yy < h; yy++ {
		ymin, n := c.bounds[2*yy], c.bounds[2*yy+1]
		k := c.k[yy*c.ksize : yy*c.ksize+n]
		o := out.Pix[yy*stride : (yy+1)*stride]
		for i := 0; i < stride; i++ {
			ss := int32(1 << (precisionBits - 1))
			for y, kv := range k {
				ss += int32(src.Pix[(ymin+y)*stride+i]) * kv
			}
			o[i] = clipFixed(ss)
		}
	}
	return out
}

// resizeNearest follows Pillow's nearest-neighbour resize, an affine
// transform sampling source pixel floor((x + 0.5) * in / out).
func resizeNearest(src *RGB, w, h int) *RGB {
	out := NewRGB(w, h)
	sx := float64(src.W) / float64(w)
	sy := float64(src.H) / float64(h)
	for y := 0; y < h; y++ {
		yi := int(math.Floor((float64(y) + 0.5) * sy))
		if yi >= src.H {
			yi = src.H - 1
		}
		for x := 0; x < w; x++ {
			xi := int(math.Floor((float64(x) + 0.5) * sx))
			if xi >= src.W {
				xi = src.W - 1
			}
			copy(out.Pix[3*(y*w+x):3*(y*w+x)+3], src.Pix[3*(yi*src.W+xi):])
		}
	}
	return out
}
