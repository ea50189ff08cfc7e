package cpu

import (
	"math/bits"

	"blip/gpu"
)

func init() {
	twins["dropout"] = func(c gpu.Call) { dropout(c.(gpu.Dropout)) }
}

// dropout: Y = X * KeepScale where word i%4 of Philox4x32-10 at counter i/4
// is at least Threshold, else 0; P = 0 copies raw words. Y may alias X.
// The key is Seed, or the two words at Seeds when that is set.
func dropout(d gpu.Dropout) {
	n := d.N
	if d.P == 0 {
		x, y := u32(d.X)[:n], u32(d.Y)[:n]
		if &x[0] != &y[0] {
			copy(y, x)
		}
		return
	}
	x, y := f32(d.X)[:n], f32(d.Y)[:n]
	thr, scale := d.Threshold(), d.KeepScale()
	k0, k1 := uint32(d.Seed), uint32(d.Seed>>32)
	if d.Seeds.Buf != nil {
		w := u32(d.Seeds)
		k0, k1 = w[0], w[1]
	}
	blocks := (n + 3) / 4
	parallel(blocks, int64(n)*4, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			r := philox4x32(uint64(b), k0, k1)
			for j := 0; j < 4 && 4*b+j < n; j++ {
				i := 4*b + j
				if r[j] < thr {
					y[i] = 0
				} else {
					y[i] = x[i] * scale
				}
			}
		}
	})
}

// philox4x32 is Philox4x32-10 (Salmon et al. 2011) at counter (ctr low,
// ctr high, 0, 0) with key (k0, k1).
func philox4x32(ctr uint64, k0, k1 uint32) [4]uint32 {
	c := [4]uint32{uint32(ctr), uint32(ctr >> 32), 0, 0}
	for round := 0; round < 10; round++ {
		hi0, lo0 := bits.Mul32(0xD2511F53, c[0])
		hi1, lo1 := bits.Mul32(0xCD9E8D57, c[2])
		c = [4]uint32{hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0}
		k0 += 0x9E3779B9
		k1 += 0xBB67AE85
	}
	return c
}
