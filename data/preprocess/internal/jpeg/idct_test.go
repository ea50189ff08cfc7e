package jpeg

import "testing"

func TestRangeLimit(t *testing.T) {
	cases := map[int64]uint8{-128: 0, -1: 127, 0: 128, 127: 255, 128: 255, 511: 255, -129: 0, -512: 0,
		// Beyond +-512 libjpeg's table wraps (only corrupt data gets there).
		512: 0, -513: 255}
	for in, want := range cases {
		if got := rangeLimit(in); got != want {
			t.Errorf("rangeLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestIDCTFlat: a DC-only block decodes to a flat block of the exact level.
func TestIDCTFlat(t *testing.T) {
	for v := 0; v < 256; v++ {
		var b block
		b[0] = int32(8 * (v - 128))
		dst := make([]byte, 64)
		idctIslow(&b, dst, 8)
		for i, got := range dst {
			if int(got) != v {
				t.Fatalf("level %d: sample %d = %d", v, i, got)
			}
		}
	}
}

// TestIDCTSingleCoefficient compares with a float reference: the integer
// IDCT is within 1 of the exact transform.
func TestIDCTSingleCoefficient(t *testing.T) {
	for k := 1; k < 64; k++ {
		var b block
		b[k] = 40
		dst := make([]byte, 64)
		idctIslow(&b, dst, 8)
		ref := floatIDCT(b)
		for i := range dst {
			d := float64(dst[i]) - ref[i]
			if d > 1 || d < -1 {
				t.Fatalf("coefficient %d sample %d: %d vs %.2f", k, i, dst[i], ref[i])
			}
		}
	}
}
