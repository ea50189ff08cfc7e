package cpu

import (
	"math"
	"testing"

	"blip/gpu"
)

// TestRoundF16 checks roundF16 against gpu.Round(gpu.F16, x) bit for bit
// (NaN: a NaN) on every f32 bit pattern near an f16 boundary (each f16
// value and the midpoints to its neighbours, ±3 ulps of f32, both signs:
// ties, the subnormal/normal seam at 2^-14, the overflow at 65520) and on
// a stride through all the others.
func TestRoundF16(t *testing.T) {
	check := func(b uint32) {
		x := math.Float32frombits(b)
		got, want := roundF16(x), gpu.Round(gpu.F16, x)
		if math.IsNaN(float64(want)) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("roundF16(%#08x) = %g, want NaN", b, got)
			}
			return
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("roundF16(%g = %#08x) = %g (%#08x), want %g (%#08x)", x, b, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	for h := uint32(0); h < 0x8000; h++ {
		v := math.Float32bits(gpu.F16ToF32(uint16(h)))
		next := math.Float32bits(gpu.F16ToF32(uint16(h + 1)))
		mid := math.Float32bits(float32((float64(math.Float32frombits(v)) + float64(math.Float32frombits(next))) / 2))
		if h >= 0x7c00 {
			mid = v
		}
		for _, c := range []uint32{v, mid} {
			for d := uint32(0); d < 7; d++ {
				check(c + d - 3)
				check(c + d - 3 | 0x80000000)
			}
		}
	}
	for b := uint64(0); b < 1<<32; b += 997 {
		check(uint32(b))
	}
}
