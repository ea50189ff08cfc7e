package gpu

import (
	"math"
	"math/big"
	"testing"
)

// nearestHalf rounds f to the nearest representable value of a binary
// format with prec significand bits and minimum normal exponent emin (ties
// to even) by brute force over big.Float, the reference the bit-twiddling
// conversions are checked against.
func nearestHalf(f float32, prec uint, emin int, maxv float64) float64 {
	x := float64(f)
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	// Below the normal range the spacing is fixed at 2^(emin-prec+1).
	bf := new(big.Float).SetFloat64(x)
	_, e := math.Frexp(x)
	p := prec
	if e-1 < emin {
		d := emin - (e - 1)
		if int(prec)-d < 0 {
			p = 0
		} else {
			p = uint(int(prec) - d)
		}
	}
	var r float64
	if p == 0 {
		// Spacing 2^(emin-prec+1): round x / spacing to an integer.
		s := math.Ldexp(1, emin-int(prec)+1)
		r = math.RoundToEven(x/s) * s
	} else {
		bf.SetMode(big.ToNearestEven).SetPrec(p)
		r, _ = bf.Float64()
	}
	if math.Abs(r) > maxv {
		return math.Copysign(math.Inf(1), x)
	}
	return r
}

func TestHalfConversions(t *testing.T) {
	var vals []float32
	for _, v := range []float32{0, 1, -1, 0.1, 65504, 65519.99, 65520, 1e-8, 2.98e-8, 5.96e-8, 6.1e-5, 6.09e-5,
		3.3895314e38, 3.39e38, float32(math.Inf(1)), float32(math.Inf(-1)), 1.00048828125, 1.000244140625, 1.0009765625} {
		vals = append(vals, v, -v)
	}
	// A sweep over every exponent with assorted significands.
	for b := uint32(0); b < 1<<32-1<<24; b += 0x000ff3b7 {
		vals = append(vals, math.Float32frombits(b))
	}
	for _, f := range vals {
		if math.IsNaN(float64(f)) {
			continue
		}
		if got, want := float64(F16ToF32(F32ToF16(f))), nearestHalf(f, 11, -14, 65504); got != want && !(got == 0 && want == 0) {
			t.Fatalf("f16(%g) = %g, want %g", f, got, want)
		}
		if got, want := float64(BF16ToF32(F32ToBF16(f))), nearestHalf(f, 8, -126, 3.3895313892515355e38); got != want && !(got == 0 && want == 0) {
			t.Fatalf("bf16(%g) = %g, want %g", f, got, want)
		}
	}
	// Every half round-trips exactly.
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(F16ToF32(F32ToF16(f)))) {
				t.Fatalf("NaN %#x lost", h)
			}
			continue
		}
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, got)
		}
		if got := F32ToBF16(BF16ToF32(uint16(h))); got != uint16(h) && !math.IsNaN(float64(BF16ToF32(uint16(h)))) {
			t.Fatalf("bf16 %#04x round trip gives %#04x", h, got)
		}
	}
	nan := float32(math.NaN())
	if !math.IsNaN(float64(BF16ToF32(F32ToBF16(nan)))) || !math.IsNaN(float64(F16ToF32(F32ToF16(nan)))) {
		t.Fatal("NaN not kept")
	}
}

// f16Ref evaluates a half-precision bit pattern with float64 arithmetic.
func f16Ref(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Pow(2, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
}

func TestF16AllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		want := f16Ref(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: got %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("%#04x: got %v, want %v", h, got, want)
		}
	}
}
