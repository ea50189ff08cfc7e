package cpu

import (
	"blip/gpu"
)

// permute: Y = X.permute(Perm) for a packed 4-D X of Shape, moving raw
// 32-bit words (f32 and i32 alike).
func permute(p gpu.Permute) {
	s := p.Shape
	// Element strides of X along its own dimensions.
	xs := [4]int{s[1] * s[2] * s[3], s[2] * s[3], s[3], 1}
	var os, st [4]int // output shape, and the X stride of each output dim
	for d := range 4 {
		os[d] = s[p.Perm[d]]
		st[d] = xs[p.Perm[d]]
	}
	n := s[0] * s[1] * s[2] * s[3]
	x, y := u32(p.X)[:n], u32(p.Y)[:n]
	rows, cols := os[0]*os[1]*os[2], os[3]
	parallel(rows, int64(n), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			i2 := o % os[2]
			i1 := o / os[2] % os[1]
			i0 := o / (os[2] * os[1])
			b := i0*st[0] + i1*st[1] + i2*st[2]
			yo := y[o*cols : (o+1)*cols]
			if st[3] == 1 {
				copy(yo, x[b:b+cols])
				continue
			}
			for i3 := range yo {
				yo[i3] = x[b+i3*st[3]]
			}
		}
	})
}
