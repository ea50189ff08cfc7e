package cpu

import (
	"math"
	"testing"
)

// TestExpf checks expf against math.Exp over the float32 range softmaxes
// use (every exponent from -104 up, many mantissas): within 2 ulp, exact
// at 0, 0 below the normal range, +Inf above it, NaN kept.
func TestExpf(t *testing.T) {
	worst := 0.0
	for b := uint32(0); b < 0xffffffff-0x1357; b += 0x1357 {
		x := math.Float32frombits(b)
		if x != x || x > 88.7 || x < -87.3 {
			continue
		}
		want := math.Exp(float64(x))
		got := float64(expf(x))
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1)))) - float64(float32(want))
		if e := math.Abs(got-want) / ulp; e > worst {
			worst = e
			if e > 2 {
				t.Fatalf("expf(%g) = %g, exp = %g: %.2f ulp", x, got, want, e)
			}
		}
	}
	t.Logf("worst error %.2f ulp", worst)
	if expf(0) != 1 || expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(float32(math.Inf(-1))) != 0 {
		t.Error("special values")
	}
	if n := float32(math.NaN()); expf(n) == expf(n) {
		t.Error("NaN lost")
	}
}

func BenchmarkExpf(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += expf(-float32(i%1000) * 0.01)
	}
	sink32 = s
}

func BenchmarkMathExp(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += float32(math.Exp(float64(-float32(i%1000) * 0.01)))
	}
	sink32 = s
}

var sink32 float32
