package augment

import (
	"math"

	"blip/data/preprocess"
)

// Fixed-point constants of OpenCV's warpAffine + bilinear remap.
const (
	abBits      = 10 // AB_BITS
	interBits   = 5  // INTER_BITS
	interTab    = 1 << interBits
	coefBits    = 15 // INTER_REMAP_COEF_BITS
	roundDeltaW = (1 << abBits) / interTab / 2
)

// cvRound is OpenCV's saturate_cast<int>(double): round half to even.
func cvRound(x float64) int { return int(math.RoundToEven(x)) }

// invertAffine is cv::invertAffineTransform.
func invertAffine(m [6]float64) [6]float64 {
	d := float64(m[0]*m[4]) - float64(m[1]*m[3])
	if d != 0 {
		d = 1 / d
	}
	a11, a22 := m[4]*d, m[0]*d
	a12, a21 := -m[1]*d, -m[3]*d
	b1 := float64(-a11*m[2]) - float64(a12*m[5])
	b2 := float64(-a21*m[2]) - float64(a22*m[5])
	return [6]float64{a11, a12, b1, a21, a22, b2}
}

// WarpAffine reproduces cv2.warpAffine(img, M, (W, H), flags=INTER_LINEAR,
// borderMode=BORDER_CONSTANT, borderValue=fill) for a forward matrix M
// (row-major 2x3, source -> destination): the matrix is inverted, source
// coordinates are computed in OpenCV's 10-bit fixed point and quantised to
// 1/32 pixel, and the four taps are blended with 15-bit integer weights;
// taps outside the image read the fill colour.
func WarpAffine(img *preprocess.RGB, m [6]float64, fill [3]uint8) *preprocess.RGB {
	w, h := img.W, img.H
	inv := invertAffine(m)
	out := preprocess.NewRGB(w, h)
	const scale = 1 << abBits
	adelta := make([]int, w)
	bdelta := make([]int, w)
	for x := 0; x < w; x++ {
		adelta[x] = cvRound(float64(inv[0]*float64(x)) * scale)
		bdelta[x] = cvRound(float64(inv[3]*float64(x)) * scale)
	}
	tap := func(sx, sy, c int) int {
		if sx < 0 || sy < 0 || sx >= w || sy >= h {
			return int(fill[c])
		}
		return int(img.Pix[3*(sy*w+sx)+c])
	}
	for y := 0; y < h; y++ {
		x0 := cvRound(float64(float64(inv[1]*float64(y))+inv[2])*scale) + roundDeltaW
		y0 := cvRound(float64(float64(inv[4]*float64(y))+inv[5])*scale) + roundDeltaW
		for x := 0; x < w; x++ {
			X := (x0 + adelta[x]) >> (abBits - interBits)
			Y := (y0 + bdelta[x]) >> (abBits - interBits)
			sx, sy := X>>interBits, Y>>interBits
			fx, fy := X&(interTab-1), Y&(interTab-1)
			// Bilinear weights in Q15: (1-a)(1-b) * 32768 etc., exact for
			// fractions that are multiples of 1/32.
			w00 := (interTab - fx) * (interTab - fy) * (1 << (coefBits - 2*interBits))
			w01 := fx * (interTab - fy) * (1 << (coefBits - 2*interBits))
			w10 := (interTab - fx) * fy * (1 << (coefBits - 2*interBits))
			w11 := fx * fy * (1 << (coefBits - 2*interBits))
			d := 3 * (y*w + x)
			for c := 0; c < 3; c++ {
				v := tap(sx, sy, c)*w00 + tap(sx+1, sy, c)*w01 +
					tap(sx, sy+1, c)*w10 + tap(sx+1, sy+1, c)*w11
				out.Pix[d+c] = clip8((v + (1 << (coefBits - 1))) >> coefBits)
			}
		}
	}
	return out
}

// f32 rounds to float32 precision, as BLIP builds its shear and translate
// matrices with np.float32.
func f32(x float64) float64 { return float64(float32(x)) }

// ShearX is BLIP's shear_x_func: forward map x' = x + factor*y.
func ShearX(img *preprocess.RGB, factor float64, fill [3]uint8) *preprocess.RGB {
	return WarpAffine(img, [6]float64{1, f32(factor), 0, 0, 1, 0}, fill)
}

// ShearY is BLIP's shear_y_func: forward map y' = y + factor*x.
func ShearY(img *preprocess.RGB, factor float64, fill [3]uint8) *preprocess.RGB {
	return WarpAffine(img, [6]float64{1, 0, 0, f32(factor), 1, 0}, fill)
}

// TranslateX is BLIP's translate_x_func: content moves left by offset
// pixels (x' = x - offset).
func TranslateX(img *preprocess.RGB, offset float64, fill [3]uint8) *preprocess.RGB {
	return WarpAffine(img, [6]float64{1, 0, f32(-offset), 0, 1, 0}, fill)
}

// TranslateY is BLIP's translate_y_func: content moves up by offset pixels.
func TranslateY(img *preprocess.RGB, offset float64, fill [3]uint8) *preprocess.RGB {
	return WarpAffine(img, [6]float64{1, 0, 0, 0, 1, f32(-offset)}, fill)
}

// RotationMatrix is cv2.getRotationMatrix2D(center, degree, 1) with the
// centre stored as float32 (cv::Point2f).
func RotationMatrix(cx, cy, degree float64) [6]float64 {
	cx, cy = f32(cx), f32(cy)
	a := degree * (math.Pi / 180)
	alpha, beta := math.Cos(a), math.Sin(a)
	return [6]float64{
		alpha, beta, float64((1-alpha)*cx) - float64(beta*cy),
		-beta, alpha, float64(beta*cx) + float64((1-alpha)*cy),
	}
}

// Rotate is BLIP's rotate_func: counter-clockwise rotation by degree about
// (W/2, H/2), same size, bilinear, corners filled.
func Rotate(img *preprocess.RGB, degree float64, fill [3]uint8) *preprocess.RGB {
	return WarpAffine(img, RotationMatrix(float64(img.W)/2, float64(img.H)/2, degree), fill)
}

// clip8 clamps to [0, 255].
func clip8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
