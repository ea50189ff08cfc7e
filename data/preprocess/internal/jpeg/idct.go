package jpeg

// This file is not from the Go standard library: it replaces Go's IDCT with
// the accurate integer IDCT of the IJG libjpeg ("islow", jidctint.c, the
// Loeffler-Ligtenberg-Moschytz algorithm), which Pillow's libjpeg-turbo uses
// by default. Go's own IDCT rounds differently and gives +-1 differences.

type block [blockSize]int32

const blockSize = 8 * 8

// Fixed-point parameters and constants of the islow IDCT: FIX(x) is
// round(x * 2^13).
const (
	constBits = 13
	pass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// descale is a rounding arithmetic right shift.
func descale(x int64, n uint) int64 { return (x + 1<<(n-1)) >> n }

// rangeLimit maps a centred IDCT output to a sample the way libjpeg's
// post-IDCT range-limit table does: the value is masked to 10 bits first,
// so wildly out-of-range values (corrupt data only) wrap as in libjpeg.
func rangeLimit(x int64) uint8 {
	t := x & 1023
	switch {
	case t < 128:
		return uint8(t + 128)
	case t < 512:
		return 255
	case t < 1024-128:
		return 0
	}
	return uint8(t - (1024 - 128))
}

// idct1D computes one 8-point inverse transform of in[0], in[s], ...,
// in[7s] and returns the eight outputs before descaling.
func idct1D(v0, v1, v2, v3, v4, v5, v6, v7 int64) (o [8]int64) {
	// Even part.
	z1 := (v2 + v6) * fix0_541196100
	tmp2 := z1 + v6*(-fix1_847759065)
	tmp3 := z1 + v2*fix0_765366865
	tmp0 := (v0 + v4) << constBits
	tmp1 := (v0 - v4) << constBits
	tmp10 := tmp0 + tmp3
	tmp13 := tmp0 - tmp3
	tmp11 := tmp1 + tmp2
	tmp12 := tmp1 - tmp2

	// Odd part.
	t0, t1, t2, t3 := v7, v5, v3, v1
	z1 = t0 + t3
	z2 := t1 + t2
	z3 := t0 + t2
	z4 := t1 + t3
	z5 := (z3 + z4) * fix1_175875602
	t0 *= fix0_298631336
	t1 *= fix2_053119869
	t2 *= fix3_072711026
	t3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 *= -fix1_961570560
	z4 *= -fix0_390180644
	z3 += z5
	z4 += z5
	t0 += z1 + z3
	t1 += z2 + z4
	t2 += z2 + z3
	t3 += z1 + z4

	o[0] = tmp10 + t3
	o[7] = tmp10 - t3
	o[1] = tmp11 + t2
	o[6] = tmp11 - t2
	o[2] = tmp12 + t1
	o[5] = tmp12 - t1
	o[3] = tmp13 + t0
	o[4] = tmp13 - t0
	return o
}

// idctIslow transforms a dequantized block (natural order) and writes the
// 8x8 samples to dst with the given row stride.
func idctIslow(b *block, dst []byte, stride int) {
	var ws [blockSize]int64
	// Pass 1: columns, keeping pass1Bits of extra precision.
	for c := 0; c < 8; c++ {
		if b[8+c] == 0 && b[16+c] == 0 && b[24+c] == 0 && b[32+c] == 0 &&
			b[40+c] == 0 && b[48+c] == 0 && b[56+c] == 0 {
			dc := int64(b[c]) << pass1Bits
			for r := 0; r < 8; r++ {
				ws[r*8+c] = dc
			}
			continue
		}
		o := idct1D(int64(b[c]), int64(b[8+c]), int64(b[16+c]), int64(b[24+c]),
			int64(b[32+c]), int64(b[40+c]), int64(b[48+c]), int64(b[56+c]))
		for r := 0; r < 8; r++ {
			// libjpeg stores the workspace as int.
			ws[r*8+c] = int64(int32(descale(o[r], constBits-pass1Bits)))
		}
	}
	// Pass 2: rows, removing the scaling and the factor 8 of the transform.
	for r := 0; r < 8; r++ {
		w := ws[r*8 : r*8+8]
		out := dst[r*stride : r*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := rangeLimit(descale(w[0], pass1Bits+3))
			for x := range out {
				out[x] = v
			}
			continue
		}
		o := idct1D(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
		for x := 0; x < 8; x++ {
			out[x] = rangeLimit(descale(o[x], constBits+pass1Bits+3))
		}
	}
}
