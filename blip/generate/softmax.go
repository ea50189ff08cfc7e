package generate

import "math"

// logSoftmax writes log_softmax(x) into dst as float32, the dtype transformers
// uses for beam scores. The normaliser is accumulated in float64; torch keeps
// float32 there, which can differ in the last bit only.
func logSoftmax(dst, x []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range x {
		if v > maxv {
			maxv = v
		}
	}
	if math.IsInf(float64(maxv), -1) {
		// Every token masked: torch yields NaN; keep -inf so the row loses.
		for i := range dst {
			dst[i] = maxv
		}
		return
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v - maxv))
	}
	lse := float32(math.Log(sum))
	for i, v := range x {
		dst[i] = (v - maxv) - lse
	}
}

// softmax64 returns softmax(x) in float64 for sampling.
func softmax64(x []float32) []float64 {
	p := make([]float64, len(x))
	maxv := math.Inf(-1)
	for _, v := range x {
		maxv = math.Max(maxv, float64(v))
	}
	if math.IsInf(maxv, -1) {
		return p
	}
	var sum float64
	for i, v := range x {
		p[i] = math.Exp(float64(v) - maxv)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// argmax returns the first index of the largest value, as torch.argmax does.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
