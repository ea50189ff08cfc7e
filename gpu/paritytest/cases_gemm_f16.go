package paritytest

import (
	"fmt"
	"math"

	"blip/gpu"
)

// Parity cases of gpu.Gemm with F16 (half-precision products, what the
// Vulkan backend runs on tensor cores: gpu/vk/gemm_coop.go, and on the
// tiled shaders' F16 specialization elsewhere), with B in f32 (the weight
// gradient of mixed-precision training) and in f16 (weights under
// --precision fp16). The inputs are fp32 data, rounded inside the kernel;
// the float64 reference rounds A, and an f32 B, to f16 as F16 defines.
//
// Tolerance. A product of two f16 values is exact in fp32 (11-bit
// significands, exponents far inside fp32's range), so the only error left
// is the fp32 summation, whose order differs between backends: the cases
// take the tolerances of the fp32 cases of the same shapes (1e-4, 2e-4 at
// BLIP's sizes), which also cover the rounding of each product that fp32
// has and F16 has not. What they guard against (a wrong row, stride, tile,
// transposition or epilogue) errs by 1e-2 and more. An operand left
// unrounded errs by up to 2^-11 relative per term, random in sign: at
// these sizes that lands within a small factor of the tolerance (it fails
// most of these cases, by a small margin), so the rounding itself is
// checked by the exact cases below.
//
// Exact cases (gemm/f16_exact_*, tolerance 0): one operand holds values on
// f16 rounding ties (and one fp32 unit either side of them, and f16 values
// themselves), in the f16 normal range and among the subnormals (multiples
// of 2^-24, rows or columns of their own), the other small integers, and
// K <= 16. The rounded operands have at most 11 significant bits, so every
// product and every partial sum is exact in fp32 (18 bits between the
// largest sum, below 2^8, and the lowest bit, 2^-10; or multiples of
// 2^-24 below 2^16 of them): every correct backend gives the float64
// result bit for bit, whatever its summation order. An operand left
// unrounded moves a row by about 2^-11 of its scale, a tie rounded away
// from even (or truncated) by 2^-10 of one term. A last case overflows
// f16 (65520 reads as infinity, 65519.99 as 65504).

func init() {
	register(gemmF16Cases)
	registerErrors(gemmF16ErrorCases)
}

// gemmF16Case is gemmCase with F16 set and the f16 reference.
func gemmF16Case(name string, g gemmCfg) Case {
	g.Gemm.F16 = true
	c := gemmCase("f16_"+name, g)
	t := g.Gemm
	bt := g.BType
	c.Ref = func(x [][]float64) {
		var bias []float64
		if g.Bias {
			bias = x[3]
		}
		a, b := roundF16(x[0]), x[1]
		if bt == gpu.F32 {
			b = roundF16(b)
		}
		refGemm(t, a, b, x[2], bias)
	}
	return c
}

// roundF16 is a copy of x with every element rounded to f16.
func roundF16(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(gpu.Round(gpu.F16, float32(v)))
	}
	return y
}

// f16Tie is an fp32 value at or next to an f16 rounding boundary, chosen by
// h: for sub, one of the f16 subnormals' (multiples u = 2^-24: (2j+1) *
// 2^-25 is the tie between j and j+1 units; j = 1023 the tie at the seam
// with the normals, 2^-14), else at exponent e = 0 or 1 (f16 unit u =
// 2^(e-10) above r = (1 + q/1024) * 2^e). Kinds: the tie (rounds to the
// even one of r and r + u), one fp32 unit below it (to r) or above it (to
// r + u), and r itself.
func f16Tie(h int, sub bool) float64 {
	// Independent bits of a hash of h for the mantissa q (its parity
	// decides where a tie goes), the kind, the sign and the exponent.
	x := uint32(h) * 2654435761
	x ^= x >> 13
	x *= 0x5bd1e995
	x ^= x >> 15
	q, kind := int(x%1024), int(x>>10)%4
	var r, u float64
	if sub {
		u = math.Ldexp(1, -24)
		r = float64(q) * u
		if (x>>16)%7 == 3 {
			r = 1023 * u
		}
	} else {
		e := int(x>>20) % 2
		u = math.Ldexp(1, e-10)
		r = (1 + float64(q)/1024) * math.Ldexp(1, e)
	}
	tie := r + u/2
	_, exp := math.Frexp(tie) // tie = f * 2^exp, f in [0.5, 1)
	ulp := math.Ldexp(1, exp-24)
	v := r
	switch kind {
	case 0:
		v = tie
	case 1:
		v = tie - ulp
	case 2:
		v = tie + ulp
	}
	if (x>>12)%2 == 1 {
		v = -v
	}
	return v
}

// exactCase is an exact case: the tie operand, op(A) (M, K) or with tieB
// op(B) (K, N), is filled with f16Tie (subnormal ties in the rows of op(A),
// or columns of op(B), from subFrom on), the other with integers in
// [-3, 3].
func exactCase(name string, g gpu.Gemm, bt gpu.DType, tieB bool, subFrom int, off [4]int) Case {
	// tie fills a stored matrix of leading dimension ld whose stored rows
	// are the rows of op(A) (columns of op(B)) when byRow, else its
	// stored columns are.
	tie := func(ld int, byRow bool) Fill {
		return Func(func(i int) float64 {
			r, k := i/ld, i%ld
			if !byRow {
				r, k = k, r
			}
			return f16Tie(r*131+k*17, r >= subFrom)
		})
	}
	c := gemmF16Case("exact_"+name, gemmCfg{Gemm: g, BType: bt, Off: off})
	ints := Ints(-3, 4)
	if tieB {
		ldb := g.N
		if g.TransB {
			ldb = g.K
		}
		c.Tensors[0].Fill, c.Tensors[1].Fill = ints, tie(ldb, g.TransB)
	} else {
		lda := g.K
		if g.TransA {
			lda = g.M
		}
		c.Tensors[0].Fill, c.Tensors[1].Fill = tie(lda, !g.TransA), ints
	}
	c.Tol = 0
	return c
}

// overflowCase: A = [[65519.99, 1], [1, -65520]], B = [[1, -1, 0.5], [2, 0,
// 65520]] (f32): 65519.99 reads as 65504 and ±65520 as ±infinity, so C =
// [[65506, -65504, +Inf], [-Inf, NaN (-Inf * 0), -Inf]]; unrounded, row 0
// would be [65521.99, -65519.99, 98280].
func overflowCase() Case {
	set := func(v ...float64) Fill {
		return Func(func(i int) float64 { return v[i] })
	}
	c := gemmF16Case("exact_overflow_m2n3k2", gemmCfg{Gemm: gpu.Gemm{M: 2, N: 3, K: 2}})
	c.Tensors[0].Fill = set(65519.99, 1, 1, -65520)
	c.Tensors[1].Fill = set(1, -1, 0.5, 2, 0, 65520)
	c.Tol = 0
	return c
}

func gemmF16Cases() []Case {
	var cs []Case
	add := func(name string, g gemmCfg) { cs = append(cs, gemmF16Case(name, g)) }
	mnk := func(m, n, k int) gpu.Gemm { return gpu.Gemm{M: m, N: n, K: k} }

	// Exact: ties in A (vec4 and scalar loads, both layouts, B in f32 and
	// f16), ties in an f32 B (both layouts), overflow.
	g := mnk(9, 12, 16)
	cs = append(cs, exactCase("tie_a_m9n12k16", g, gpu.F32, false, 7, [4]int{}))
	g = mnk(8, 12, 16)
	g.TransA = true
	cs = append(cs, exactCase("tie_a_ta_m8n12k16", g, gpu.F32, false, 6, [4]int{}))
	g = mnk(7, 5, 13)
	g.TransA, g.TransB = true, true
	cs = append(cs, exactCase("tie_a_ta_tb_f16b_m7n5k13_off", g, gpu.F16, false, 5, [4]int{1, 3, 2, 0}))
	g = mnk(9, 7, 11)
	cs = append(cs, exactCase("tie_a_f16b_m9n7k11", g, gpu.F16, false, 7, [4]int{}))
	g = mnk(6, 12, 16)
	cs = append(cs, exactCase("tie_b_m6n12k16", g, gpu.F32, true, 9, [4]int{}))
	g = mnk(6, 7, 11)
	g.TransB = true
	cs = append(cs, exactCase("tie_b_tb_m6n7k11_off", g, gpu.F32, true, 5, [4]int{2, 1, 0, 0}))
	cs = append(cs, overflowCase())

	for _, bt := range []gpu.DType{gpu.F32, gpu.F16} {
		p := map[gpu.DType]string{gpu.F32: "b32_", gpu.F16: "b16_"}[bt]
		// Sizes 1, odd, around the tiles; B as stored either way.
		for _, s := range [][3]int{{1, 1, 1}, {7, 5, 3}, {65, 63, 129}, {1, 129, 65}} {
			for _, tb := range []bool{false, true} {
				g := gpu.Gemm{M: s[0], N: s[1], K: s[2], TransB: tb}
				add(fmt.Sprintf("%sm%dn%dk%d_tb%v", p, s[0], s[1], s[2], tb), gemmCfg{Gemm: g, BType: bt})
			}
		}
		// All four transpositions with leading dimensions past the rows.
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				name := map[bool]string{false: "n", true: "t"}
				g := gpu.Gemm{M: 67, N: 45, K: 33, TransA: ta, TransB: tb, LdA: 70, LdB: 71, LdC: 50}
				add(p+"trans_"+name[ta]+name[tb]+"_ld_m67n45k33", gemmCfg{Gemm: g, BType: bt})
			}
		}
		// One operand staged along m or n (the tensor cores' _t builds),
		// the other element by element.
		g := gpu.Gemm{M: 37, N: 40, K: 29, LdA: 31}
		add(p+"scalar_a_along_n_m37n40k29", gemmCfg{Gemm: g, BType: bt})
		g = gpu.Gemm{M: 40, N: 23, K: 27, TransA: true, TransB: true, LdA: 44, LdB: 31}
		add(p+"along_m_scalar_b_m40n23k27", gemmCfg{Gemm: g, BType: bt})
		// Odd offsets (scalar loads) with bias, GELU, Alpha and
		// accumulation into C; tanh with Beta 0.5.
		g = gpu.Gemm{M: 37, N: 29, K: 41, LdA: 45, LdB: 43, LdC: 31, TransB: true, Beta: 1, Act: gpu.ActGELU, Alpha: 0.15}
		add(p+"offsets_bias_gelu_beta1_m37n29k41", gemmCfg{Gemm: g, Bias: true, BType: bt, Off: [4]int{3, 1, 7, 5}})
		g = gpu.Gemm{M: 31, N: 33, K: 17, Beta: 0.5, Act: gpu.ActTanh, Alpha: 0.25}
		add(p+"bias_tanh_beta_half_m31n33k17", gemmCfg{Gemm: g, Bias: true, BType: bt})
		// Batched: a broadcast B (one weight, many rows), and strided
		// transposed batches with gaps.
		g = gpu.Gemm{M: 19, N: 24, K: 32, Batch: 3, StrideA: 19 * 32, TransB: true}
		add(p+"batch_broadcast_m19n24k32", gemmCfg{Gemm: g, BType: bt})
		g = gpu.Gemm{M: 19, N: 23, K: 29, Batch: 4, TransA: true, TransB: true, LdA: 21, LdB: 33, LdC: 25,
			StrideA: 29*21 + 4, StrideB: 23*33 + 1, StrideC: 19*25 + 7, Beta: 1}
		add(p+"batch4_strided_ld_tt_beta1", gemmCfg{Gemm: g, BType: bt, Off: [4]int{1, 2, 3, 0}})
	}
	// BLIP's products under fp16 mixed precision: ViT-B/16's fc1 at 384px
	// (577 tokens) and a decode step against the 30524-word LM head, both
	// on f16 weights; a weight gradient dW = dY^T X (both f32) of a
	// 768 x 768 layer over 577 tokens.
	g = gpu.Gemm{M: 577, N: 3072, K: 768, TransB: true}
	add("b16_vit_fc1_m577n3072k768", gemmCfg{Gemm: g, BType: gpu.F16, Bias: true, Tol: 2e-4})
	g = gpu.Gemm{M: 3, N: 30524, K: 768, TransB: true}
	add("b16_lm_head_m3n30524k768", gemmCfg{Gemm: g, BType: gpu.F16, Bias: true, Tol: 2e-4})
	g = gpu.Gemm{M: 768, N: 768, K: 577, TransA: true, Beta: 1}
	add("b32_dw_m768n768k577_ta_beta1", gemmCfg{Gemm: g, Tol: 2e-4})
	// The input gradient dX = dY W of a 768 x 768 layer (W stored (K, N),
	// read along n) over 577 tokens, accumulated into an existing
	// gradient. (fc2's, 3072 wide, would not split into the 4 MiB
	// bindings of TestShaderSplitting: a column block of W stored that way
	// spans all of it.)
	g = gpu.Gemm{M: 577, N: 768, K: 768, Beta: 1}
	add("b16_dx_m577n768k768_beta1", gemmCfg{Gemm: g, BType: gpu.F16, Tol: 2e-4})
	// f16 weights stored (N, K) with K a multiple of 4 but not of 8 (two
	// 8-byte loads per eight k in the tensor-core GEMM, the second past
	// the end in the last step), and of 8 with a K tail inside a step
	// (16-byte loads).
	g = gpu.Gemm{M: 33, N: 40, K: 44, TransB: true}
	add("b16_vec4_m33n40k44_tb", gemmCfg{Gemm: g, BType: gpu.F16, Bias: true})
	g = gpu.Gemm{M: 33, N: 40, K: 72, TransB: true}
	add("b16_vec8_m33n40k72_tb", gemmCfg{Gemm: g, BType: gpu.F16, Bias: true})
	return cs
}

func gemmF16ErrorCases() []ErrorCase {
	return []ErrorCase{
		{"f16_b_bf16", "gemm", func(e *Env) gpu.Call {
			return gpu.Gemm{A: e.F32(12), B: e.V(gpu.BF16, 20), C: e.F32(15), M: 3, N: 5, K: 4, F16: true}
		}},
	}
}
