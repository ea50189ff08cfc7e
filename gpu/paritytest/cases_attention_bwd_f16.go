package paritytest

import (
	"fmt"
	"math"
	"sync"

	"blip/gpu"
)

// Parity cases of gpu.AttentionBackward with F16 (half-precision products,
// the backward of the Attention.F16 cases in cases_attention_f16.go). The
// inputs are those of the fp32 backward cases (fp32 data; O and LSE of the
// fp32 forward, as the backward is defined for any O and LSE); the float64
// reference rounds Q, K, V, DO, P and dS to f16 (through fp32, as the
// backends hold them) where F16 says.
//
// Tolerance. Products of f16 values are exact in fp32, so two correct
// backends differ by their fp32 summation order (attnBwdTol covers that in
// the fp32 kernel) and, through it, by a P or dS so close to an f16
// rounding boundary that they round it to different sides: one f16 unit,
// at most 2^-10 of the value, so the term it enters (f16(P) f16(DO[i]) of
// DV[j], Scale f16(dS) f16(K[j]) of DQ[i], Scale f16(dS) f16(Q[i]) of
// DK[j]) moves by at most 2^-10 of itself. Compare scales errors by
// S = max(1, max |want|) over the view, and no term of these cases exceeds
// 1.25 S: the large terms come from rows where one key takes most of the
// weight, and there they make the output they enter (at most 1.08 S over
// the table; the reference checks the 1.25 and panics where new data break
// it). So a flip moves an output by at most 1.25 * 2^-10 S. P and dS carry
// fp32 errors of a few 2^-24 relative (more where dP - Delta cancels, but
// then the term is small), so one lies within reach of a boundary (half a
// unit, 2^-12..2^-11 relative) with a probability of about 2^-9: two flips
// among the few large terms of one element are unlikely, three practically
// impossible. attnBwdF16Tol allows two, 2 * 1.25 * 2^-10 + attnBwdTol ~
// 2.5e-3 (over the table the CPU backend errs by at most 4e-4 against the
// reference, lavapipe by 8e-4 against the CPU). Large values (Std 4) scale
// the terms and S alike and need no tolerance of their own. What this
// guards against (a wrong mask, row, stride, tile, P or Delta) errs by
// 1e-1 and more; the roundings themselves move these outputs by about as
// much as flips (ignoring F16 altogether, by 2e-4 to 1.5e-3, and 1.2e-2 at
// Std 4), so the exact cases check them.
//
// Exact cases: every P and dS lies at least 2^-13 (relative) from an f16
// rounding boundary, far beyond any backend's fp32 error (the reference
// checks a margin of 2^-16 and panics where a change of the data breaks
// it), every sum is exact or nearly (errors of a few 2^-24), Floor is -1
// (errors relative to the largest output of each view, so that the small
// DQ and DK count) and the tolerance 1e-5. Dropping any one rounding moves
// an output by 2^-13 or more, relative. Each comes twice: aligned, and at
// element offset 3 with D = 6 or 40 (the Vulkan shader's vec4 and scalar
// loads).
//
//   - f16_tk1_exact*: one key. Q, K, V, DO are values of few bits
//     (±(1 + k/4)) moved off the f16 grid by 2^-12 (a quarter of a unit:
//     their rounding is known and no tie), O = f16(V) (the F16 forward's
//     output for one key), LSE = s - log(c) with c = 2^-e (1 + 2^-13), so
//     that P = c rounds to 2^-e; dP = f16(DO).f16(V) and Delta = DO.f16(V)
//     differ by the dot product T of DO's offsets with f16(V), a multiple
//     of 2^-14 of at most 9 bits, and dS = -c T rounds to -2^-e T. Every
//     product and sum is exact in fp32 (but for the multiplications by
//     Scale). Checks the rounding of Q and K (through s, and in DQ and
//     DK), of V and DO (DV, dS), of P (DV), of dS (DQ, DK), and that Delta
//     reads DO unrounded (with f16(DO), dS is 0).
//   - f16_p_rounding*: 40 keys, in tiles, a masked tail. Q = 0, so the
//     scores are the mask f16ExactMask (P = x (1 + 2^-12) with x on the
//     f16 grid; LSE 0), O = 0 (Delta 0), DO = ±2^a (1 + 2^-12) and V[j] is
//     zero but for one element ±2^b c (1 + 2^-12), so dP = ±2^(a+b) c. With
//     c = 1, x dP is an f16 value and dS = P dP rounds to it. Where x =
//     (128 + f)/128 2^-e has an odd f, c = c'/16 (c' odd) makes x dP an
//     f16 rounding tie, one that goes down (to even): dS, above it by
//     2^-12 relative, rounds up, and a backend that took f16(P) for P in
//     dS would round the tie down. Checks the rounding of P (DV), of dS
//     and K (DQ), of DO and V (through dP), and that dS takes P
//     unrounded. DK is 0 (Q = 0).

func init() {
	register(attentionBwdF16Cases)
}

const (
	// attnBwdF16TermBound bounds the terms of the random cases' outputs
	// relative to the view's scale S (checked by the reference).
	attnBwdF16TermBound = 1.25
	attnBwdF16Tol       = 2*attnBwdF16TermBound/1024 + attnBwdTol
	attnBwdF16ExactTol  = 1e-5
	// attnBwdF16Margin is the least distance (relative) from an f16
	// rounding boundary that the exact cases' P and dS keep.
	attnBwdF16Margin = 1.0 / (1 << 16)
)

// f16Of is x rounded to f16 through fp32, as the backends round what they
// hold in fp32.
func f16Of(x float64) float64 { return float64(gpu.Round(gpu.F16, float32(x))) }

// f16Margin is the distance of x (as an fp32 value) from the nearest f16
// rounding boundary, relative to |x|; +Inf where x is on the f16 grid (no
// backend's error moves a value from the grid to a boundary).
func f16Margin(x float64) float64 {
	a := math.Abs(float64(float32(x)))
	r := f16Of(a)
	if a == r || math.IsInf(a, 0) || math.IsNaN(a) {
		return math.Inf(1)
	}
	h := gpu.F32ToF16(float32(r))
	var n float64
	if a > r {
		n = float64(gpu.F16ToF32(h + 1))
	} else {
		n = float64(gpu.F16ToF32(h - 1))
	}
	return math.Abs(a-(r+n)/2) / a
}

// maxAbs is the largest finite |x|.
func maxAbs(x []float64) float64 {
	var m float64
	for _, e := range x {
		if a := math.Abs(e); a > m && !math.IsInf(a, 0) {
			m = a
		}
	}
	return m
}

// refAttentionBackwardF16 is the float64 backward with F16's roundings (see
// gpu.AttentionBackward.F16): Q, K, V, DO rounded for the products, DO and
// O as they are for Delta, P and dS rounded where they are products'
// operands. It checks (and panics where it fails) the claim its case's
// tolerance rests on: for an exact case, that every P and dS keeps
// attnBwdF16Margin from the f16 rounding boundaries; otherwise, that no
// term of an output exceeds attnBwdF16TermBound times the output's scale.
func refAttentionBackwardF16(g attnGeom, q, k, v, o, do, lse, mask, dq, dk, dv []float64, exact bool) {
	s := g.s
	scale := float64(s.ScaleValue())
	round := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i, e := range x {
			y[i] = f16Of(e)
		}
		return y
	}
	qh, kh, vh, doh := round(q), round(k), round(v), round(do)
	var (
		mu    sync.Mutex
		bad   []string
		terms [3]float64 // largest term of DQ, DK, DV
	)
	check := func(what string, b, h, i, j int, x float64) {
		if exact && f16Margin(x) < attnBwdF16Margin {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s[b=%d h=%d i=%d j=%d] = %.9g", what, b, h, i, j, x))
			mu.Unlock()
		}
	}
	forEachHead(s.B, s.H, func(b, h int) {
		z := make([]float64, s.Tk)
		dK := make([]float64, s.Tk*s.D)
		dV := make([]float64, s.Tk*s.D)
		dQ := make([]float64, s.D)
		var tq, tk, tv float64
		for i := 0; i < s.Tq; i++ {
			clear(dQ)
			l := lse[(b*s.H+h)*s.Tq+i]
			if !math.IsInf(l, 1) {
				n := refScores(g, qh, kh, mask, b, h, i, z)
				qo, oo := g.q.at(b, i, h, 0, s.D), g.o.at(b, i, h, 0, s.D)
				var delta float64
				for d := 0; d < s.D; d++ {
					delta += do[oo+d] * o[oo+d]
				}
				mq, mdo := maxAbs(qh[qo:qo+s.D]), maxAbs(doh[oo:oo+s.D])
				for j := 0; j < n; j++ {
					p := math.Exp(z[j] - l)
					check("P", b, h, i, j, p)
					ph := f16Of(p)
					ko, vo := g.k.at(b, j, h, 0, s.D), g.v.at(b, j, h, 0, s.D)
					var dp float64
					for d := 0; d < s.D; d++ {
						dp += doh[oo+d] * vh[vo+d]
						dV[j*s.D+d] += ph * doh[oo+d]
					}
					ds := p * (dp - delta)
					check("dS", b, h, i, j, ds)
					ds = f16Of(ds) * scale
					for d := 0; d < s.D; d++ {
						dQ[d] += ds * kh[ko+d]
						dK[j*s.D+d] += ds * qh[qo+d]
					}
					mk := maxAbs(kh[ko : ko+s.D])
					tq, tk, tv = max(tq, math.Abs(ds)*mk), max(tk, math.Abs(ds)*mq), max(tv, ph*mdo)
				}
			}
			copy(dq[g.q.at(b, i, h, 0, s.D):][:s.D], dQ)
		}
		for j := 0; j < s.Tk; j++ {
			copy(dk[g.k.at(b, j, h, 0, s.D):][:s.D], dK[j*s.D:(j+1)*s.D])
			copy(dv[g.v.at(b, j, h, 0, s.D):][:s.D], dV[j*s.D:(j+1)*s.D])
		}
		mu.Lock()
		terms = [3]float64{max(terms[0], tq), max(terms[1], tk), max(terms[2], tv)}
		mu.Unlock()
	})
	if len(bad) > 0 {
		panic(fmt.Sprintf("paritytest: %d values of an exact f16 attention backward case lie within %.3g of an f16 rounding boundary, e.g. %s",
			len(bad), attnBwdF16Margin, bad[0]))
	}
	if !exact {
		for i, out := range [][]float64{dq, dk, dv} {
			if sc := max(1, maxAbs(out)); terms[i] > attnBwdF16TermBound*sc {
				panic(fmt.Sprintf("paritytest: an f16 attention backward case has a term of %s of %.4g, more than %g times the output's scale %.4g: its tolerance does not hold",
					[]string{"DQ", "DK", "DV"}[i], terms[i], attnBwdF16TermBound, sc))
			}
		}
	}
}

// attentionBwdF16Case is the F16 backward case of c: attentionBwdCase's
// tensors and data, the call with F16 set, refAttentionBackwardF16 as the
// reference.
func attentionBwdF16Case(name string, c attnCfg, tol float64, exact bool) Case {
	cs := attentionBwdCaseRef("f16_"+name, c, func(g attnGeom, q, k, v, o, do, lse, mask, dq, dk, dv []float64) {
		refAttentionBackwardF16(g, q, k, v, o, do, lse, mask, dq, dk, dv, exact)
	})
	build := cs.Build
	cs.Build = func(v []gpu.View) gpu.Call {
		call := build(v).(gpu.AttentionBackward)
		call.F16 = true
		return call
	}
	cs.Tol = tol
	return cs
}

// Tensors of an exact case (packed, not fused).
const (
	exQ = iota
	exK
	exV
	exO
	exDO
	exLSE
)

// exactHash is a hash of (tensor, element) for the exact cases' data
// (splitmix64's finaliser).
func exactHash(tensor, i int) uint64 {
	x := uint64(tensor)<<40 ^ uint64(i) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// gridValue is ±(1 + k/4), k in 0..3, from h: an f16 value of few bits, so
// that products and short sums of such values are exact in fp32.
func gridValue(h uint64) float64 {
	x := 1 + float64(h%4)/4
	if h>>8&1 == 1 {
		x = -x
	}
	return x
}

// offGrid is x (a gridValue) moved by 2^-12, up or down in magnitude as h
// says (up from 1, where the grid below is finer): a quarter of the f16 unit
// of [1, 2), so f16 rounds it back to x, and never from a tie.
func offGrid(x float64, h uint64) float64 {
	d := math.Ldexp(1, -12)
	if h>>16&1 == 1 && math.Abs(x) > 1 {
		d = -d
	}
	return math.Copysign(math.Abs(x)+d, x)
}

// tk1ExactCase is an f16_tk1_exact case (see the file comment) of shape s
// (Tk = 1, packed) with views at element offset off.
func tk1ExactCase(name string, s gpu.AttentionShape, off int) Case {
	cs := attentionBwdF16Case(name, attnCfg{AttentionShape: s, Off: off}, attnBwdF16ExactTol, true)
	cs.Floor = -1
	grid := func(tensor, i int) float64 { return gridValue(exactHash(tensor, i)) }
	val := func(tensor, i int) float64 { return offGrid(grid(tensor, i), exactHash(tensor, i)) }
	hd := s.H * s.D
	// Q, O, DO element (b, i, h, d) lies at (b*Tq + i)*H*D + h*D + d, K and
	// V's (one key) at b*H*D + h*D + d.
	qAt := func(b, i, h, d int) int { return (b*s.Tq+i)*hd + h*s.D + d }
	kAt := func(b, h, d int) int { return b*hd + h*s.D + d }
	for _, t := range []int{exQ, exK, exV, exDO} {
		cs.Tensors[t].Fill = Func(func(i int) float64 { return val(t, i) })
	}
	cs.Tensors[exO].Fill = Func(func(i int) float64 { // f16(V)
		return grid(exV, kAt(i/(s.Tq*hd), i%hd/s.D, i%s.D))
	})
	scale := float64(s.ScaleValue())
	cs.Tensors[exLSE].Fill = Func(func(i int) float64 { // s - log(c)
		b, h, r := i/(s.H*s.Tq), i/s.Tq%s.H, i%s.Tq
		var dot float64
		for d := 0; d < s.D; d++ {
			dot += grid(exQ, qAt(b, r, h, d)) * grid(exK, kAt(b, h, d))
		}
		c := math.Ldexp(1+math.Ldexp(1, -13), -(1 + i%4))
		return scale*dot - math.Log(c)
	})
	return cs
}

// tieFactor is c of f16_p_rounding's V[j] (see the file comment): with x =
// (128 + f)/128 2^-e the probability f16ExactMask gives key j, x c is an
// f16 rounding tie that goes down where f is odd; 1 otherwise.
func tieFactor(j int) float64 {
	n := 128 + j%29
	if j == 0 || n%2 == 0 {
		return 1
	}
	// x c = n c' 2^-(11+e): an odd 12-bit n c' is a tie, and one of the
	// form 4m + 1 lies between the even 2m and 2m + 1 (units of 2^-(10+e)).
	for c := 15; c <= 31; c += 2 {
		if m := n * c; m > 2048 && m < 4096 && m%4 == 1 {
			return float64(c) / 16
		}
	}
	panic("paritytest: no tie factor")
}

// pRoundingCase is an f16_p_rounding case (see the file comment) of shape
// s (packed) with views at element offset off.
func pRoundingCase(name string, s gpu.AttentionShape, off int) Case {
	cs := attentionBwdF16Case(name, attnCfg{AttentionShape: s, Mask: f16ExactMask, Off: off}, attnBwdF16ExactTol, true)
	cs.Floor = -1
	hd := s.H * s.D
	pow2 := func(h uint64, e int) float64 { // ±2^e (1 + 2^-12)
		x := math.Ldexp(1+math.Ldexp(1, -12), e)
		if h>>8&1 == 1 {
			x = -x
		}
		return x
	}
	cs.Tensors[exQ].Fill = Const(0)
	cs.Tensors[exK].Fill = Func(func(i int) float64 {
		h := exactHash(exK, i)
		return offGrid(gridValue(h), h)
	})
	cs.Tensors[exV].Fill = Func(func(i int) float64 {
		j, h, d := i/hd%s.Tk, i%hd/s.D, i%s.D
		if d != (5*j+3*h)%s.D {
			return 0
		}
		x := exactHash(exV, i)
		return tieFactor(j) * pow2(x, -int(x%2))
	})
	cs.Tensors[exO].Fill = Const(0)
	cs.Tensors[exDO].Fill = Func(func(i int) float64 {
		x := exactHash(exDO, i)
		return pow2(x, int(x%3)-1)
	})
	cs.Tensors[exLSE].Fill = Const(0)
	return cs
}

func attentionBwdF16Cases() []Case {
	sh := func(b, h, tq, tk, d int) gpu.AttentionShape {
		return gpu.AttentionShape{B: b, H: h, Tq: tq, Tk: tk, D: d}
	}
	causal := func(s gpu.AttentionShape) gpu.AttentionShape { s.Causal = true; return s }
	ninf := math.Inf(-1)

	// No flip possible: the roundings themselves are checked.
	cs := []Case{
		tk1ExactCase("tk1_exact", sh(2, 3, 5, 1, 16), 0),
		tk1ExactCase("tk1_exact_d6_off3", sh(2, 2, 3, 1, 6), 3),
		pRoundingCase("p_rounding", sh(2, 2, 9, 40, 64), 0),
		pRoundingCase("p_rounding_d40_off3", sh(2, 2, 5, 40, 40), 3),
	}
	add := func(name string, c attnCfg) {
		cs = append(cs, attentionBwdF16Case(name, c, attnBwdF16Tol, false))
	}

	// BLIP's shapes: ViT-B self-attention (577 tokens, heads of 64; two
	// heads keep the float64 reference quick), padded text (BERT's -10000,
	// -Inf, -MaxFloat32), the causal decoder and a decoding step,
	// cross-attention over the image tokens, the tiny models' D = 16.
	add("vit_t577", attnCfg{AttentionShape: sh(1, 2, 577, 577, 64)})
	add("text_t1", attnCfg{AttentionShape: sh(2, 12, 1, 1, 64), Mask: padMask(-10000, 1, 1)})
	add("text_t35_mask", attnCfg{AttentionShape: sh(2, 12, 35, 35, 64), Mask: padMask(-10000, 35, 12)})
	add("text_t40_mask_fmin", attnCfg{AttentionShape: sh(2, 12, 40, 40, 64), Mask: padMask(-math.MaxFloat32, 31, 40)})
	add("decoder_t35_causal_mask", attnCfg{AttentionShape: causal(sh(2, 12, 35, 35, 64)), Mask: padMask(-10000, 35, 20)})
	add("decode_tq1_tk40_causal", attnCfg{AttentionShape: causal(sh(2, 12, 1, 40, 64)), Mask: padMask(-10000, 40, 33)})
	add("cross_tq35_tk577_mask", attnCfg{AttentionShape: sh(2, 4, 35, 577, 64), Mask: padMask(ninf, 577, 300)})
	add("tiny_t7_d16_mask", attnCfg{AttentionShape: sh(2, 4, 7, 7, 16), Mask: padMask(-10000, 7, 4)})

	// Odd sizes and head dimensions, another scale, large scores, empty
	// rows, fully masked batches.
	add("1x1_d16", attnCfg{AttentionShape: sh(1, 1, 1, 1, 16)})
	add("t9_d6_odd", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Mask: padMask(-10000, 9, 5)})
	add("t70_d40_causal_mask", attnCfg{AttentionShape: causal(sh(2, 2, 70, 70, 40)), Mask: padMask(-10000, 70, 61)})
	add("t33_d32_scale", attnCfg{AttentionShape: gpu.AttentionShape{B: 1, H: 2, Tq: 33, Tk: 65, D: 32, Scale: 0.3}})
	add("t33_d128", attnCfg{AttentionShape: sh(2, 2, 33, 33, 128), Mask: padMask(ninf, 33, 20)})
	add("t40_large_values", attnCfg{AttentionShape: sh(2, 2, 40, 40, 64), Std: 4, Mask: padMask(-10000, 40, 13)})
	add("causal_tq7_tk4_empty_rows", attnCfg{AttentionShape: causal(sh(1, 2, 7, 4, 16))})
	add("fully_masked_batch", attnCfg{AttentionShape: sh(2, 3, 9, 12, 32), Mask: padMask(ninf, 12, 0)})
	add("fully_masked_causal", attnCfg{AttentionShape: causal(sh(2, 3, 20, 20, 64)), Mask: padMask(ninf, 20, 0)})

	// Layouts: fused qkv (causal over 577 tokens, and with a strided O),
	// explicit batch strides, unaligned views.
	add("fused_qkv_t577_causal", attnCfg{AttentionShape: causal(sh(1, 2, 577, 577, 64)), Fused: true})
	fused := sh(2, 4, 35, 35, 64)
	fused.OTok = 4*64 + 8
	fused.OBatch = int64(35*fused.OTok + 12)
	add("fused_qkv_strided_o", attnCfg{AttentionShape: fused, Fused: true, Mask: padMask(-10000, 35, 22)})
	strided := gpu.AttentionShape{B: 3, H: 2, Tq: 13, Tk: 21, D: 64, QTok: 130, KTok: 200, VTok: 128, OTok: 136,
		QBatch: 13*130 + 7, KBatch: 21*200 + 1, VBatch: 21*128 + 4, OBatch: 13*136 + 3}
	add("strided_batches", attnCfg{AttentionShape: strided, Mask: padMask(-10000, 21, 5, 14)})
	add("unaligned_off3", attnCfg{AttentionShape: sh(2, 3, 35, 35, 64), Off: 3, Mask: padMask(-10000, 35, 9)})
	return cs
}
