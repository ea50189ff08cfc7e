package paritytest

import (
	"fmt"

	"blip/gpu"
)

// Decoding's products: a few rows (a row per sequence and beam) against a
// weight stored (N, K), which GPUs run on gemm_rows.comp. Rows around its
// blocks of 8 and its limit of 32, columns around its pairs, K with and
// without vec4 alignment (577 image tokens, BLIP's widths), unaligned
// offsets, epilogues, batches, and the 16-bit variants (B in f16 or bf16
// storage; F16 products).

func init() { register(gemmRowsCases) }

func gemmRowsCases() []Case {
	var cs []Case
	add := func(name string, g gemmCfg) { cs = append(cs, gemmCase("rows_"+name, g)) }
	tb := func(m, n, k int) gpu.Gemm { return gpu.Gemm{M: m, N: n, K: k, TransB: true} }
	for _, s := range [][3]int{{1, 1, 1}, {1, 3, 5}, {1, 768, 768}, {2, 7, 64}, {3, 9, 577}, {5, 33, 12},
		{8, 17, 100}, {9, 16, 31}, {16, 5, 3072}, {17, 31, 64}, {31, 2, 9}, {32, 65, 768}} {
		add(fmt.Sprintf("m%dn%dk%d", s[0], s[1], s[2]), gemmCfg{Gemm: tb(s[0], s[1], s[2])})
	}
	// The LM head of beam search (3 beams over BLIP's 30524 tokens).
	add("lm_head_m3n30524k768", gemmCfg{Gemm: tb(3, 30524, 768), Bias: true, Tol: 2e-4})
	// Epilogues, leading dimensions and unaligned views.
	g := tb(3, 45, 64)
	g.Alpha, g.Act = 0.125, gpu.ActGELU
	add("bias_gelu_m3n45k64", gemmCfg{Gemm: g, Bias: true})
	g = tb(4, 33, 17)
	g.Beta, g.Act, g.Alpha = 0.5, gpu.ActTanh, 0.25
	add("beta_half_bias_tanh_m4n33k17", gemmCfg{Gemm: g, Bias: true})
	g = tb(5, 29, 40)
	g.LdA, g.LdB, g.LdC, g.Beta = 44, 48, 31, 1
	add("ld_aligned_beta1_m5n29k40", gemmCfg{Gemm: g, Bias: true})
	g.LdA, g.LdB = 45, 43
	add("ld_offsets_m5n29k40", gemmCfg{Gemm: g, Bias: true, Off: [4]int{3, 1, 7, 5}})
	add("aligned_ld_offset_b_m5n29k40", gemmCfg{Gemm: tb(5, 29, 40), Off: [4]int{4, 2, 0, 0}})
	// Batched: broadcast A, strided B with gaps (decoder heads read in place).
	g = tb(2, 23, 28)
	g.Batch, g.StrideA, g.StrideB, g.StrideC = 3, 0, 23*28+4, 2*23+1
	add("batch3_broadcast_a_m2n23k28", gemmCfg{Gemm: g})
	// 16-bit weights, and half-precision products.
	for _, bt := range []gpu.DType{gpu.F16, gpu.BF16} {
		add(fmt.Sprintf("b%s_m1n768k768", bt), gemmCfg{Gemm: tb(1, 768, 768), BType: bt, Bias: true, Tol: 2e-4})
		add(fmt.Sprintf("b%s_m3n9k577", bt), gemmCfg{Gemm: tb(3, 9, 577), BType: bt})
	}
	for _, bt := range []gpu.DType{gpu.F32, gpu.F16} {
		cs = append(cs, gemmF16Case(fmt.Sprintf("rows_b%s_m3n31k768", bt), gemmCfg{Gemm: tb(3, 31, 768), BType: bt, Bias: true, Tol: 2e-4}))
		cs = append(cs, gemmF16Case(fmt.Sprintf("rows_b%s_m9n5k77", bt), gemmCfg{Gemm: tb(9, 5, 77), BType: bt}))
	}
	return cs
}
