package cpu

import "math"

// expf is exp for float32 arguments to about 1 ulp, without float64: the
// softmaxes of attention take one exp per score (8M per ViT-B/16 layer at
// 384px and batch 2), where math.Exp cost more than the two SGEMMs around
// it. Cody-Waite reduction exp(x) = 2^k exp(r), |r| <= ln2/2, with ln2 in two
// parts, and the degree-7 Taylor polynomial of exp(r) (the same as the
// shaders' exp_acc in common.glsl).
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		return 0 // below the smallest normal float
	}
	// k = round(x / ln2): adding 1.5*2^23 rounds to an integer in float32
	// arithmetic (|x / ln2| < 2^22 here).
	const magic = 12582912
	k := (x*1.44269504 + magic) - magic
	r := x - k*0.693145752 // ln2 high part: k*hi is exact
	r -= k * 1.42860677e-6
	p := float32(1.98412698e-4)
	p = p*r + 1.38888889e-3
	p = p*r + 8.33333333e-3
	p = p*r + 4.16666667e-2
	p = p*r + 1.66666667e-1
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	ki := int32(k)
	if ki > 127 {
		// 2^128 is not a float32: two halves.
		return p * 2 * math.Float32frombits(uint32(ki-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(ki+127)<<23)
}
