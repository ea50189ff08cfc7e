package paritytest

import (
	"fmt"

	"blip/gpu"
)

// Cases of 16-bit activations (inference under --precision fp16/bf16):
// gpu.Gemm with A and/or C in F16 or BF16 (with B in f32 and in 16 bits,
// with and without F16 products), and gpu.LayerNorm with a 16-bit Y. The
// harness rounds a 16-bit input as it stores it, so the references see the
// stored values; a 16-bit output is compared with its own tolerance, the
// case's plus one unit of its type at the scale (storedUnit). gpu.Attention
// with a 16-bit O likewise.

func init() {
	register(act16Cases)
	registerErrors(act16ErrorCases)
}

func act16Cases() []Case {
	var cs []Case
	add := func(name string, g gemmCfg) {
		if g.F16 {
			cs = append(cs, gemmF16Case("act16_"+name, g))
			return
		}
		cs = append(cs, gemmCase("act16_"+name, g))
	}
	types := []gpu.DType{gpu.F32, gpu.F16, gpu.BF16}
	for _, at := range types {
		for _, ct := range types {
			if at == gpu.F32 && ct == gpu.F32 {
				continue
			}
			p := fmt.Sprintf("a%s_c%s_", at, ct)
			for _, s := range [][3]int{{1, 1, 1}, {7, 5, 3}, {65, 63, 129}} {
				for _, tr := range [][2]bool{{false, true}, {true, false}} {
					g := gpu.Gemm{M: s[0], N: s[1], K: s[2], TransA: tr[0], TransB: tr[1]}
					add(fmt.Sprintf("%sm%dn%dk%d_ta%v_tb%v", p, s[0], s[1], s[2], tr[0], tr[1]),
						gemmCfg{Gemm: g, AType: at, CType: ct, BType: gpu.F16})
				}
			}
			// Odd offsets and leading dimensions (scalar loads and
			// stores), bias, GELU and Beta reading a 16-bit C; B in f32.
			g := gpu.Gemm{M: 37, N: 29, K: 41, LdA: 45, LdB: 43, LdC: 31, TransB: true, Beta: 1, Act: gpu.ActGELU, Alpha: 0.15}
			add(p+"offsets_bias_gelu_beta1_m37n29k41", gemmCfg{Gemm: g, Bias: true, AType: at, CType: ct, Off: [4]int{3, 1, 7, 5}})
			// vec4 access of A and C (N, K, offsets multiples of 4), A
			// stored (K, M) along m.
			g = gpu.Gemm{M: 36, N: 40, K: 44, TransA: true, TransB: true, Beta: 0.5}
			add(p+"vec4_ta_beta_half_m36n40k44", gemmCfg{Gemm: g, Bias: true, AType: at, CType: ct, BType: gpu.BF16, Off: [4]int{4, 0, 8, 4}})
			g = gpu.Gemm{M: 19, N: 24, K: 32, Batch: 3, StrideA: 19 * 32, TransB: true}
			add(p+"batch_broadcast_m19n24k32", gemmCfg{Gemm: g, AType: at, CType: ct, BType: gpu.F16})
		}
	}
	// fp16 inference's products: f16 A (a LayerNorm's or GELU's output)
	// and f16 weights, F16 products; C in f16 (the next product's input)
	// or f32 (the residual stream, Beta 1). F16 reads an f16 A as it is,
	// so these equal the f32-A cases of the same values.
	for _, ct := range []gpu.DType{gpu.F16, gpu.F32} {
		g := gpu.Gemm{M: 37, N: 29, K: 41, LdA: 45, LdC: 31, TransB: true, Act: gpu.ActGELU, F16: true}
		add(fmt.Sprintf("f16_a_c%s_gelu_m37n29k41", ct), gemmCfg{Gemm: g, Bias: true, AType: gpu.F16, CType: ct, BType: gpu.F16, Off: [4]int{1, 0, 3, 2}})
		g = gpu.Gemm{M: 33, N: 40, K: 72, TransB: true, Beta: 1, F16: true}
		add(fmt.Sprintf("f16_a_c%s_beta1_m33n40k72", ct), gemmCfg{Gemm: g, Bias: true, AType: gpu.F16, CType: ct, BType: gpu.F16})
	}
	// A stored (K, M) in f16: along m in vec4s (the tensor-core GEMM's _t
	// builds) and element by element.
	for _, m := range []int{36, 37} {
		g := gpu.Gemm{M: m, N: 40, K: 44, TransA: true, TransB: true, Beta: 0.5, F16: true}
		add(fmt.Sprintf("f16_a_ta_m%dn40k44", m), gemmCfg{Gemm: g, Bias: true, AType: gpu.F16, CType: gpu.F16, BType: gpu.F16})
	}
	g := gpu.Gemm{M: 577, N: 3072, K: 768, TransB: true, Act: gpu.ActGELU, F16: true}
	add("f16_vit_fc1_m577n3072k768", gemmCfg{Gemm: g, Bias: true, AType: gpu.F16, CType: gpu.F16, BType: gpu.F16, Tol: 2e-4})
	g = gpu.Gemm{M: 577, N: 768, K: 3072, TransB: true, Beta: 1}
	add("bf16_vit_fc2_m577n768k3072_beta1", gemmCfg{Gemm: g, Bias: true, AType: gpu.BF16, BType: gpu.BF16, Tol: 2e-4})

	// Attention writing a 16-bit O (the input of the output projection):
	// odd shapes (scalar stores), the ViT's 577 tokens, with and without
	// F16 products (the tensor-core kernel's where there is one, for f16).
	sh := func(b, h, tq, tk, d int) gpu.AttentionShape {
		return gpu.AttentionShape{B: b, H: h, Tq: tq, Tk: tk, D: d}
	}
	for _, ot := range []gpu.DType{gpu.F16, gpu.BF16} {
		p := "act16_o" + ot.String() + "_"
		cs = append(cs,
			attentionCase(p+"t7_d16_h3_mask", attnCfg{AttentionShape: sh(2, 3, 7, 7, 16), Mask: padMask(-10000, 7, 4), OType: ot}),
			attentionCase(p+"t9_d6_odd_off", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Off: 3, OType: ot}),
			attentionCase(p+"fused_t35_mask", attnCfg{AttentionShape: sh(2, 12, 35, 35, 64), Fused: true, Mask: padMask(-10000, 35, 12), OType: ot}),
			attentionCase(p+"vit_h2_t577_nolse", attnCfg{AttentionShape: sh(1, 2, 577, 577, 64), NoLSE: true, OType: ot}))
	}
	// Q, K and V in 16 bits too (a fused qkv projection's output, read in
	// place), O in f32 or 16 bits.
	for _, qt := range []gpu.DType{gpu.F16, gpu.BF16} {
		for _, ot := range []gpu.DType{gpu.F32, qt} {
			p := "act16_q" + qt.String() + "_o" + ot.String() + "_"
			cs = append(cs,
				attentionCase(p+"t7_d16_h3_mask", attnCfg{AttentionShape: sh(2, 3, 7, 7, 16), Mask: padMask(-10000, 7, 4), QType: qt, OType: ot}),
				attentionCase(p+"t9_d6_odd_off", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Off: 3, QType: qt, OType: ot}),
				attentionCase(p+"fused_t35_mask", attnCfg{AttentionShape: sh(2, 12, 35, 35, 64), Fused: true, Mask: padMask(-10000, 35, 12), QType: qt, OType: ot}))
		}
	}
	cs = append(cs,
		attentionF16Case("act16_qf16_of16_fused_t70_causal_mask", attnCfg{AttentionShape: gpu.AttentionShape{B: 2, H: 2, Tq: 70, Tk: 70, D: 40, Causal: true},
			Fused: true, Mask: padMask(-10000, 70, 61), QType: gpu.F16, OType: gpu.F16}, attnF16Tol, false),
		attentionF16Case("act16_qf16_of16_t9_d6_odd_off", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Off: 3, QType: gpu.F16, OType: gpu.F16}, attnF16Tol, false),
		attentionF16Case("act16_qf16_of32_vit_fused_h2_t577", attnCfg{AttentionShape: sh(1, 2, 577, 577, 64), Fused: true, NoLSE: true, QType: gpu.F16}, attnF16Tol, false),
		attentionF16Case("act16_of16_t33_d64_mask", attnCfg{AttentionShape: sh(2, 2, 33, 33, 64), Mask: padMask(-10000, 33, 20), OType: gpu.F16}, attnF16Tol, false),
		attentionF16Case("act16_of16_vit_fused_h2_t577", attnCfg{AttentionShape: sh(1, 2, 577, 577, 64), Fused: true, NoLSE: true, OType: gpu.F16}, attnF16Tol, false))

	// Unary into a 16-bit Y (training's GELU after a product that keeps
	// its input): absolute errors below magnitude 1 (Floor 1), where a
	// value's own f16 unit is below the fp32 differences' reach.
	for _, yt := range []gpu.DType{gpu.F16, gpu.BF16} {
		for _, o := range []struct {
			name string
			op   gpu.UnaryOp
			tol  float64
		}{{"gelu", gpu.UnaryGELU, 1e-5}, {"copy", gpu.UnaryCopy, 0}, {"scale", gpu.UnaryScale, 1e-6}} {
			u := unaryCfg{Op: o.op, Alpha: -0.37, Tol: o.tol, Floor: 1, DType: gpu.F32, YType: yt, X: Normal(0, 2)}
			p := "act16_y" + yt.String() + "_" + o.name
			u.N = 1
			cs = append(cs, unaryCase(p+"_n1", u))
			u.N = 1031
			cs = append(cs, unaryCase(p+"_n1031", u))
			u.OffX, u.OffY = 3, 1
			cs = append(cs, unaryCase(p+"_n1031_off", u))
		}
	}

	// The backward with 16-bit Q, K and V (fp16 training keeps a fused qkv
	// projection's output in f16): odd shapes, fused, F16 at 577 tokens.
	for _, qt := range []gpu.DType{gpu.F16, gpu.BF16} {
		p := "act16_q" + qt.String() + "_"
		cs = append(cs,
			attentionBwdCase(p+"t7_d16_h3_mask", attnCfg{AttentionShape: sh(2, 3, 7, 7, 16), Mask: padMask(-10000, 7, 4), QType: qt}),
			attentionBwdCase(p+"t9_d6_odd_off", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Off: 3, QType: qt}),
			attentionBwdCase(p+"fused_t35_mask", attnCfg{AttentionShape: sh(2, 12, 35, 35, 64), Fused: true, Mask: padMask(-10000, 35, 12), QType: qt}))
	}
	cs = append(cs,
		attentionBwdF16Case("act16_qf16_t9_d6_odd_mask_off", attnCfg{AttentionShape: sh(2, 3, 9, 9, 6), Mask: padMask(-10000, 9, 5), Off: 3, QType: gpu.F16}, attnBwdF16Tol, false),
		attentionBwdF16Case("act16_qf16_fused_t21_d16_causal_mask", attnCfg{AttentionShape: gpu.AttentionShape{B: 2, H: 2, Tq: 21, Tk: 21, D: 16, Causal: true},
			Fused: true, Mask: padMask(-10000, 21, 15), QType: gpu.F16}, attnBwdF16Tol, false))

	ln := func(name string, l layerNormCfg) { cs = append(cs, layerNormCase(name, l)) }
	for _, yt := range []gpu.DType{gpu.F16, gpu.BF16} {
		p := "y" + yt.String() + "_"
		ln(p+"rows1_cols1", layerNormCfg{Rows: 1, Cols: 1, Eps: 1e-5, X: Normal(0, 1), YType: yt})
		ln(p+"rows5_cols37_off", layerNormCfg{Rows: 5, Cols: 37, Eps: 1e-6, X: Normal(3, 2), YType: yt, Off: [6]int{1, 3, 2, 5, 0, 0}})
		ln(p+"vit_rows577_cols768_residual_sum", layerNormCfg{Rows: 577, Cols: 768, Eps: 1e-5, X: Normal(0, 1), YType: yt,
			Res: true, Sum: true, ResOff: [2]int{2, 1}})
		ln(p+"rows3_cols1031_stats", layerNormCfg{Rows: 3, Cols: 1031, Eps: 1e-12, X: Normal(-1, 4), YType: yt, Mean: true, Rstd: true})
	}
	return cs
}

func act16ErrorCases() []ErrorCase {
	gemm := func(e *Env) gpu.Gemm { // a valid 3x4 @ 4x5, A and C in f16
		return gpu.Gemm{A: e.V(gpu.F16, 12), B: e.V(gpu.F16, 20), C: e.V(gpu.F16, 15), M: 3, N: 5, K: 4}
	}
	ln := func(e *Env) gpu.LayerNorm {
		return gpu.LayerNorm{X: e.F32(12), Y: e.V(gpu.F16, 12), Gamma: e.F32(4), Beta: e.F32(4), Rows: 3, Cols: 4, Eps: 1e-5}
	}
	return []ErrorCase{
		{"a_bf16_f16_products", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A, g.F16 = e.V(gpu.BF16, 12), true; return g }},
		{"a_f16_too_small", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A = e.V(gpu.F16, 11); return g }},
		{"c_bf16_too_small", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.C = e.V(gpu.BF16, 14); return g }},
		{"c_f16_overlaps_a", "gemm", func(e *Env) gpu.Call {
			g := gemm(e)
			g.C = gpu.View{Buf: g.A.Buf, Off: g.A.Off + 6, Len: 15, DType: gpu.F16}
			return g
		}},
		{"c_f16_overlaps_b", "gemm", func(e *Env) gpu.Call {
			g := gemm(e)
			b := e.F32(40)
			g.B = b.Slice(0, 20)
			g.C = gpu.View{Buf: b.Buf, Off: 2 * (b.Off + 19), Len: 15, DType: gpu.F16} // B's last element
			return g
		}},
		{"y_f16_too_small", "layernorm", func(e *Env) gpu.Call { l := ln(e); l.Y = e.V(gpu.F16, 11); return l }},
		{"y_f16_aliases_x", "layernorm", func(e *Env) gpu.Call {
			l := ln(e)
			l.Y = gpu.View{Buf: l.X.Buf, Off: 2 * l.X.Off, Len: 12, DType: gpu.F16}
			return l
		}},
		{"y_i32", "layernorm", func(e *Env) gpu.Call { l := ln(e); l.Y = e.I32(12); return l }},
		{"y_f16_overlaps_x", "unary", func(e *Env) gpu.Call {
			x := e.F32(8)
			return gpu.Unary{Op: gpu.UnaryGELU, X: x, Y: gpu.View{Buf: x.Buf, Off: 2*x.Off + 2, Len: 8, DType: gpu.F16}, N: 8}
		}},
		{"x_i32_y_f16", "unary", func(e *Env) gpu.Call { return gpu.Unary{Op: gpu.UnaryCopy, X: e.I32(8), Y: e.V(gpu.F16, 8), N: 8} }},
		{"o_f16_too_small", "attention", func(e *Env) gpu.Call {
			s := gpu.AttentionShape{B: 1, H: 2, Tq: 3, Tk: 3, D: 4}
			return gpu.Attention{Q: e.F32(24), K: e.F32(24), V: e.F32(24), O: e.V(gpu.F16, 23), AttentionShape: s}
		}},
		{"q_f16_k_f32", "attention", func(e *Env) gpu.Call {
			s := gpu.AttentionShape{B: 1, H: 2, Tq: 3, Tk: 3, D: 4}
			return gpu.Attention{Q: e.V(gpu.F16, 24), K: e.F32(24), V: e.V(gpu.F16, 24), O: e.V(gpu.F16, 24), AttentionShape: s}
		}},
		{"qkv_bf16_f16_products", "attention", func(e *Env) gpu.Call {
			s := gpu.AttentionShape{B: 1, H: 2, Tq: 3, Tk: 3, D: 4}
			return gpu.Attention{Q: e.V(gpu.BF16, 24), K: e.V(gpu.BF16, 24), V: e.V(gpu.BF16, 24), O: e.F32(24), AttentionShape: s, F16: true}
		}},
	}
}
