package cpu

import (
	"blip/gpu"
)

func init() {
	twins["copy2d"] = func(c gpu.Call) { copy2D(c.(gpu.Copy2D)) }
}

// copy2D: Y[r*LdY + c] = X[r*LdX + c] (raw words, so i32 too), or += in f32
// with Accumulate.
func copy2D(k gpu.Copy2D) {
	rows, cols := k.Rows, k.Cols
	ldx, ldy := k.Lds()
	if k.Accumulate {
		x, y := f32(k.X), f32(k.Y)
		parallel(rows, int64(rows)*int64(cols), func(r0, r1 int) {
			for r := r0; r < r1; r++ {
				yr := y[r*ldy : r*ldy+cols]
				for j, v := range x[r*ldx : r*ldx+cols] {
					yr[j] += v
				}
			}
		})
		return
	}
	x, y := u32(k.X), u32(k.Y)
	parallel(rows, int64(rows)*int64(cols), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			copy(y[r*ldy:r*ldy+cols], x[r*ldx:r*ldx+cols])
		}
	})
}
