package cpu

import (
	"blip/gpu"
)

// binary: C[i] = A[i] op B[i % BN] for i < N (BN 0 means N); C may alias A
// or B.
func binary(c gpu.Binary) {
	n, bn := c.N, c.BN
	if bn == 0 {
		bn = n
	}
	a, b, out := f32(c.A)[:n], f32(c.B)[:bn], f32(c.C)[:n]
	parallel(n, int64(n), func(lo, hi int) {
		j := lo % bn
		for i := lo; i < hi; {
			// One stretch of B without wrapping: i..i+m, j..j+m.
			m := min(hi-i, bn-j)
			as, bs, cs := a[i:i+m], b[j:j+m], out[i:i+m]
			switch c.Op {
			case gpu.BinaryAdd:
				for k := range cs {
					cs[k] = as[k] + bs[k]
				}
			case gpu.BinarySub:
				for k := range cs {
					cs[k] = as[k] - bs[k]
				}
			case gpu.BinaryMul:
				for k := range cs {
					cs[k] = as[k] * bs[k]
				}
			case gpu.BinaryDiv:
				for k := range cs {
					cs[k] = as[k] / bs[k]
				}
			}
			i += m
			j = 0
		}
	})
}
