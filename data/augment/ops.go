package augment

import (
	"fmt"
	"math/rand/v2"

	"blip/data/preprocess"
)

// BLIP's RandomAugment constants (transform/randaugment.py).
const (
	MaxLevel       = 10
	TranslateConst = 10
)

// Fill is BLIP's replace_value for the geometric ops.
var Fill = [3]uint8{128, 128, 128}

// BLIPOps is the augmentation list of BLIP's create_dataset.
var BLIPOps = []string{"Identity", "AutoContrast", "Brightness", "Sharpness", "Equalize",
	"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}

// RandomAugment is BLIP's RandomAugment(N, M, isPIL=True, augs=Ops): N ops
// drawn uniformly with replacement, each applied with probability P (0.5)
// at magnitude M.
type RandomAugment struct {
	N, M int
	P    float64
	Ops  []string
	// NumpyAutoContrast reproduces BLIP's uint8 negation wrap in
	// autocontrast_func (see AutoContrastNumpy) instead of PIL's result.
	NumpyAutoContrast bool
}

// NewBLIPRandomAugment returns RandomAugment(2, 5) over BLIPOps.
func NewBLIPRandomAugment() *RandomAugment {
	return &RandomAugment{N: 2, M: 5, P: 0.5, Ops: append([]string(nil), BLIPOps...)}
}

// Applied records one op that was applied and its argument (factor,
// signed shear, signed offset or signed degrees; 0 for argument-free ops).
type Applied struct {
	Name string
	Arg  float64
}

// Apply draws the ops (all N choices first, then per op the probability
// draw and, for signed ops, the sign draw, as the reference does) and
// applies them. It returns the image and the ops applied, in order.
func (a *RandomAugment) Apply(img *preprocess.RGB, r *rand.Rand) (*preprocess.RGB, []Applied) {
	if len(a.Ops) == 0 || a.N <= 0 {
		return img, nil
	}
	chosen := make([]string, a.N)
	for i := range chosen {
		chosen[i] = a.Ops[r.IntN(len(a.Ops))]
	}
	var done []Applied
	for _, name := range chosen {
		if r.Float64() > a.P {
			continue
		}
		arg := LevelToArg(name, a.M, r)
		var out *preprocess.RGB
		var err error
		if name == "AutoContrast" && a.NumpyAutoContrast {
			out = AutoContrastNumpy(img)
		} else {
			out, err = ApplyOp(img, name, arg)
		}
		if err != nil {
			panic(err) // unknown names are rejected by Validate
		}
		img = out
		done = append(done, Applied{Name: name, Arg: arg})
	}
	return img, done
}

// Validate checks that every op name is known.
func (a *RandomAugment) Validate() error {
	for _, n := range a.Ops {
		if _, err := ApplyOp(preprocess.NewRGB(1, 1), n, 0); err != nil {
			return err
		}
	}
	return nil
}

// LevelToArg maps magnitude level to the op's argument as BLIP's arg_dict:
// enhance ops (level/10)*1.8+0.1; shear (level/10)*0.3, negated when a
// draw is > 0.5; translate (level/10)*10 pixels, same sign rule; rotate
// (level/10)*30 degrees, negated when a draw is < 0.5.
func LevelToArg(name string, level int, r *rand.Rand) float64 {
	l := float64(level) / MaxLevel
	switch name {
	case "Brightness", "Sharpness", "Color", "Contrast":
		return l*1.8 + 0.1
	case "ShearX", "ShearY":
		v := l * 0.3
		if r.Float64() > 0.5 {
			v = -v
		}
		return v
	case "TranslateX", "TranslateY":
		v := l * TranslateConst
		if r.Float64() > 0.5 {
			v = -v
		}
		return v
	case "Rotate":
		v := l * 30
		if r.Float64() < 0.5 {
			v = -v
		}
		return v
	}
	return 0
}

// ApplyOp applies one named op with its argument.
func ApplyOp(img *preprocess.RGB, name string, arg float64) (*preprocess.RGB, error) {
	switch name {
	case "Identity":
		return img, nil
	case "AutoContrast":
		return AutoContrast(img), nil
	case "Equalize":
		return Equalize(img), nil
	case "Brightness":
		return Brightness(img, arg), nil
	case "Sharpness":
		return Sharpness(img, arg), nil
	case "ShearX":
		return ShearX(img, arg, Fill), nil
	case "ShearY":
		return ShearY(img, arg, Fill), nil
	case "TranslateX":
		return TranslateX(img, arg, Fill), nil
	case "TranslateY":
		return TranslateY(img, arg, Fill), nil
	case "Rotate":
		return Rotate(img, arg, Fill), nil
	}
	return nil, fmt.Errorf("augment: unknown op %q", name)
}

// applyLUT maps each channel through its table.
func applyLUT(img *preprocess.RGB, lut *[3][256]uint8) *preprocess.RGB {
	out := preprocess.NewRGB(img.W, img.H)
	for i, v := range img.Pix {
		out.Pix[i] = lut[i%3][v]
	}
	return out
}

// AutoContrast is PIL.ImageOps.autocontrast(img) (cutoff 0) per channel:
// the channel's [min, max] is stretched to [0, 255] with
// lut[v] = int(v*scale + offset), scale = 255/(max-min), offset =
// -min*scale; a constant channel is left as is.
//
// BLIP's numpy version computes -low on a numpy uint8, which wraps, so
// there a channel whose minimum is above 0 comes out all 255; this follows
// PIL (the documented intent) instead.
func AutoContrast(img *preprocess.RGB) *preprocess.RGB {
	var lut [3][256]uint8
	for c := 0; c < 3; c++ {
		lo, hi := 255, 0
		for i := c; i < len(img.Pix); i += 3 {
			v := int(img.Pix[i])
			lo, hi = min(lo, v), max(hi, v)
		}
		for v := 0; v < 256; v++ {
			if hi <= lo {
				lut[c][v] = uint8(v)
				continue
			}
			scale := 255 / float64(hi-lo)
			offset := -float64(lo) * scale
			x := float64(float64(v)*scale) + offset
			if x < 0 {
				x = 0
			}
			if x > 255 {
				x = 255
			}
			lut[c][v] = uint8(x)
		}
	}
	return applyLUT(img, &lut)
}

// AutoContrastNumpy is BLIP's autocontrast_func as numpy evaluates it:
// offset = -low*scale negates a numpy uint8, giving (256-low)*scale, so a
// channel whose minimum is above 0 (and not constant) becomes all 255; a
// channel with minimum 0 is stretched as PIL does.
func AutoContrastNumpy(img *preprocess.RGB) *preprocess.RGB {
	out := AutoContrast(img)
	for c := 0; c < 3; c++ {
		lo, hi := 255, 0
		for i := c; i < len(img.Pix); i += 3 {
			v := int(img.Pix[i])
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo > 0 && hi > lo {
			for i := c; i < len(out.Pix); i += 3 {
				out.Pix[i] = 255
			}
		}
	}
	return out
}

// Equalize is PIL.ImageOps.equalize per channel (as BLIP's equalize_func):
// step = (pixels - count of the last non-empty bin) / 255, and
// lut[v] = (step/2 + pixels below v) / step; unchanged when step is 0.
func Equalize(img *preprocess.RGB) *preprocess.RGB {
	var lut [3][256]uint8
	for c := 0; c < 3; c++ {
		var hist [256]int
		for i := c; i < len(img.Pix); i += 3 {
			hist[img.Pix[i]]++
		}
		total, last := 0, 0
		for _, n := range hist {
			total += n
			if n != 0 {
				last = n
			}
		}
		step := (total - last) / 255
		if step == 0 {
			for v := range lut[c] {
				lut[c][v] = uint8(v)
			}
			continue
		}
		n := step / 2
		for v := 0; v < 256; v++ {
			lut[c][v] = clip8(n / step)
			n += hist[v]
		}
	}
	return applyLUT(img, &lut)
}

// Brightness is BLIP's brightness_func: lut[v] = uint8(clip(float32(v) *
// factor, 0, 255)) (truncating).
func Brightness(img *preprocess.RGB, factor float64) *preprocess.RGB {
	var lut [3][256]uint8
	f := float32(factor)
	for v := 0; v < 256; v++ {
		x := float32(v) * f
		x = min(max(x, 0), 255)
		lut[0][v], lut[1][v], lut[2][v] = uint8(x), uint8(x), uint8(x)
	}
	return applyLUT(img, &lut)
}

// Sharpness is BLIP's sharpness_func: the degenerate image is the 3x3
// smoothing kernel [1 1 1; 1 5 1; 1 1 1]/13 (cv2.filter2D, reflect-101
// border, rounded); factor 1 returns the image, factor 0 the degenerate
// image, otherwise interior pixels become degenerate + factor*(img -
// degenerate) truncated to uint8 (clamped here; numpy would wrap) and the
// one-pixel border is kept.
func Sharpness(img *preprocess.RGB, factor float64) *preprocess.RGB {
	if factor == 1 {
		return img
	}
	w, h := img.W, img.H
	refl := func(i, n int) int {
		if n == 1 {
			return 0
		}
		if i < 0 {
			return -i
		}
		if i >= n {
			return 2*n - 2 - i
		}
		return i
	}
	k1, k5 := float32(1.0)/13, float32(5.0)/13
	deg := preprocess.NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var s float32
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						k := k1
						if dx == 0 && dy == 0 {
							k = k5
						}
						s += k * float32(img.Pix[3*(refl(y+dy, h)*w+refl(x+dx, w))+c])
					}
				}
				deg.Pix[3*(y*w+x)+c] = clip8(cvRound(float64(s)))
			}
		}
	}
	if factor == 0 {
		return deg
	}
	out := &preprocess.RGB{W: w, H: h, Pix: append([]uint8(nil), img.Pix...)}
	f := float32(factor)
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			for c := 0; c < 3; c++ {
				i := 3*(y*w+x) + c
				d := float32(deg.Pix[i])
				v := d + f*(float32(img.Pix[i])-d)
				v = min(max(v, 0), 255)
				out.Pix[i] = uint8(v)
			}
		}
	}
	return out
}
