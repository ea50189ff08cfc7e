package cpu

import (
	"math"

	"blip/gpu"
)

// Half-precision products (gpu.Gemm.F16): the operands are rounded to f16
// into copies before the fp32 product, so that the product code (the
// blocked SGEMM, gonum) stays the one fp32 path. The copies cost O(MK + KN)
// against the product's O(MNK).

// roundF16 is gpu.Round(gpu.F16, x), bit for bit, without its branches on
// the common path: RNE on the 13 dropped mantissa bits of an f16-normal
// value (the carry may reach the exponent, up to infinity), and below
// 2^-14, where f16 values are the multiples of 2^-24, an exact scaling and
// round-to-even.
func roundF16(x float32) float32 {
	b := math.Float32bits(x)
	a := b & 0x7fffffff
	if a < 0x38800000 { // |x| < 2^-14
		return float32(math.RoundToEven(float64(x)*(1<<24)) / (1 << 24))
	}
	if a > 0x7f800000 { // NaN: gpu.Round's quiet NaN
		return gpu.Round(gpu.F16, x)
	}
	a = (a + 0xfff + (a>>13)&1) &^ 0x1fff
	if a > 0x477fe000 { // above 65504: rounded past the largest f16
		a = 0x7f800000
	}
	return math.Float32frombits(b&0x80000000 | a)
}

// roundedF16 returns a copy of x with every element rounded to f16.
func roundedF16(x []float32) []float32 {
	y := make([]float32, len(x))
	parallel(len(x), int64(len(x))*8, func(lo, hi int) {
		for i, v := range x[lo:hi] {
			y[lo+i] = roundF16(v)
		}
	})
	return y
}
