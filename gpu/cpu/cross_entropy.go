package cpu

import (
	"math"

	"blip/gpu"
)

func init() {
	twins["cross_entropy"] = func(c gpu.Call) { crossEntropy(c.(gpu.CrossEntropy)) }
}

// crossEntropy: per row, in float64, Loss = (1-eps)*(lse - z[y]) + eps*(lse -
// mean(z)) and DLogits = Scale*(softmax(z) - (1-eps)*onehot(y) - eps/Cols);
// rows with a label outside [0, Cols) get 0 and a zero row. DLogits may
// alias Logits: each row is read before it is written.
func crossEntropy(k gpu.CrossEntropy) {
	rows, cols := k.Rows, k.Cols
	z, labels, loss, dz := f32(k.Logits), i32(k.Labels), f32(k.Loss), f32(k.DLogits)
	eps := float64(k.Smoothing)
	scale := float64(k.Scale)
	if scale == 0 {
		scale = 1
	}
	parallel(rows, int64(rows)*int64(cols)*8, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			zr := z[r*cols : (r+1)*cols]
			y := int(labels[r])
			if y < 0 || y >= cols {
				if loss != nil {
					loss[r] = 0
				}
				if dz != nil {
					clear(dz[r*cols : (r+1)*cols])
				}
				continue
			}
			m, s := rowMaxSumExp(zr)
			lse := m + math.Log(s)
			if loss != nil {
				l := lse - float64(zr[y])
				if eps != 0 { // sz may be -Inf
					var sz float64
					for _, v := range zr {
						sz += float64(v)
					}
					l = (1-eps)*l + eps*(lse-sz/float64(cols))
				}
				loss[r] = float32(l)
			}
			if dz != nil {
				dr := dz[r*cols : (r+1)*cols]
				u := eps / float64(cols)
				for j, v := range zr {
					g := math.Exp(float64(v)-m)/s - u
					if j == y {
						g -= 1 - eps
					}
					dr[j] = float32(scale * g)
				}
			}
		}
	})
}

// rowMaxSumExp is a row's maximum m (NaN where the row holds one) and
// sum of exp(z - m), in float64: the cross-entropy's log-sum-exp is
// m + log s (crossEntropy, and ArgMax.NLL at the pick).
func rowMaxSumExp(z []float32) (m, s float64) {
	m = math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v)) // a NaN stays
	}
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	return m, s
}
