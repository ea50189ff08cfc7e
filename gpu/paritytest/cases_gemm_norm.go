package paritytest

import (
	"fmt"

	"blip/gpu"
)

// gemm_norm: a linear layer and the LayerNorm after it (gpu.GemmNorm), as
// a post-LN block's output projection and norm, and the LM head's
// transform. Decoding's few rows (one workgroup per row block normalises
// them on GPUs: blocks of 8 rows, at most 32) with C as the LayerNorm's X
// or as its residual, with and without the sum S, f32 and 16-bit weights
// and F16 products, vec4 and scalar loads, unaligned views; and shapes the
// one-pass form does not take (many rows, saved statistics), which run as
// the two calls.

func init() {
	register(gemmNormCases)
	registerErrors(gemmNormErrorCases)
}

type gemmNormCfg struct {
	gemmCfg      // G: TransB, one batch, C packed
	Other   bool // L has an operand besides C (its residual, or X when AsR)
	AsR     bool // C is L's residual R, the other operand L's X
	Sum     bool // L writes C + other to S
	Stats   bool // L saves Mean and Rstd
	Eps     float32
	NormOff [3]int // offsets of the other operand, Y, S
	// YOverA puts Y in A's memory, shifted by YShift rows (N == K), as a
	// plan may: the norm must not write before every product has read.
	YOverA bool
	YShift int
}

func gemmNormCase(name string, g gemmNormCfg) Case {
	t := g.Gemm
	t.TransB = true
	m, n, k := t.M, t.N, t.K
	aLen := m * k
	if g.YOverA {
		aLen = (m + g.YShift) * k
	}
	ts := []Tensor{
		f32("A", aLen, Normal(0, 1)).at(g.Off[0]),
		{Name: "B", DType: g.BType, Len: n * k, Fill: Normal(0, 1), Off: g.Off[1]},
		f32("C", m*n, Const(nan)).at(g.Off[2]).out(),
	}
	bi := -1
	if g.Bias {
		bi = len(ts)
		ts = append(ts, f32("Bias", n, Normal(0, 1)).at(g.Off[3]))
	}
	oi := -1
	if g.Other || g.AsR {
		oi = len(ts)
		ts = append(ts, f32("O", m*n, Normal(0.5, 3)).at(g.NormOff[0]))
	}
	gi := len(ts)
	ts = append(ts, f32("Gamma", n, Normal(1, 0.2)), f32("Beta", n, Normal(0, 0.2)),
		f32("Y", m*n, Const(nan)).at(g.NormOff[1]).out())
	yt, yoff := gi+2, 0 // Y: its own tensor, or rows of A's
	if g.YOverA {
		ts[0].Out = true
		ts = ts[:gi+2]
		yt, yoff = 0, g.YShift*n
	}
	si := -1
	if g.Sum {
		si = len(ts)
		ts = append(ts, f32("S", m*n, Const(nan)).at(g.NormOff[2]).out())
	}
	mi := -1
	if g.Stats {
		mi = len(ts)
		ts = append(ts, f32("Mean", m, Const(nan)).out(), f32("Rstd", m, Const(nan)).out())
	}
	tol := g.Tol
	if tol == 0 {
		tol = 1e-4
	}
	l := gpu.LayerNorm{Rows: m, Cols: n, Eps: g.Eps}
	return Case{
		Name: "gemm_norm/" + name, Kernel: "gemm_norm", Tol: tol, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := gpu.GemmNorm{G: t, L: l}
			c.G.A, c.G.B, c.G.C = v[0].Slice(0, int64(m*k)), v[1], v[2]
			if bi >= 0 {
				c.G.Bias = v[bi]
			}
			c.L.X, c.L.Gamma, c.L.Beta, c.L.Y = v[2], v[gi], v[gi+1], v[yt].Slice(int64(yoff), int64(m*n))
			switch {
			case g.AsR:
				c.L.X, c.L.R = v[oi], v[2]
			case oi >= 0:
				c.L.R = v[oi]
			}
			if si >= 0 {
				c.L.S = v[si]
			}
			if mi >= 0 {
				c.L.Mean, c.L.Rstd = v[mi], v[mi+1]
			}
			return c
		},
		Ref: func(x [][]float64) {
			var bias []float64
			if bi >= 0 {
				bias = x[bi]
			}
			a, b := x[0][:m*k:m*k], x[1]
			if t.F16 {
				a = roundF16(a)
				if g.BType == gpu.F32 {
					b = roundF16(b)
				}
			}
			refGemm(t, a, b, x[2], bias)
			// The LayerNorm reads C as stored (f32), and the fp32 sum.
			in := make([]float64, m*n)
			for i := range in {
				in[i] = float64(float32(x[2][i]))
				if oi >= 0 {
					in[i] = float64(float32(in[i] + x[oi][i]))
				}
			}
			if si >= 0 {
				copy(x[si], in)
			}
			var mean, rstd []float64
			if mi >= 0 {
				mean, rstd = x[mi], x[mi+1]
			}
			refLayerNorm(l, in, x[yt][yoff:yoff+m*n], x[gi], x[gi+1], mean, rstd)
		},
	}
}

func gemmNormCases() []Case {
	var cs []Case
	add := func(name string, g gemmNormCfg) { cs = append(cs, gemmNormCase(name, g)) }
	mnk := func(m, n, k int) gpu.Gemm { return gpu.Gemm{M: m, N: n, K: k} }
	// Rows around the blocks of 8 and the limit of 32, columns 1, odd and
	// BLIP's 768, K with and without vec4 alignment (3072: the FFN's
	// output; 577: the image tokens).
	for _, s := range [][3]int{{1, 1, 1}, {1, 5, 7}, {1, 768, 768}, {2, 33, 64}, {3, 130, 577},
		{8, 17, 100}, {9, 16, 31}, {16, 768, 3072}, {31, 2, 9}, {32, 65, 768}} {
		name := fmt.Sprintf("m%dn%dk%d", s[0], s[1], s[2])
		add("res_"+name, gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(s[0], s[1], s[2]), Bias: true}, Other: true, Eps: 1e-12})
	}
	// C as the residual (the Add's second operand), the sum written too.
	add("asr_m3n45k64", gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(3, 45, 64), Bias: true}, AsR: true, Eps: 1e-12})
	add("asr_sum_m9n768k768", gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(9, 768, 768), Bias: true}, AsR: true, Sum: true, Eps: 1e-12})
	add("sum_m5n29k40", gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(5, 29, 40)}, Other: true, Sum: true, Eps: 1e-5})
	// No residual: the LM head's transform (GELU) and its norm.
	g := mnk(3, 768, 768)
	g.Act = gpu.ActGELU
	add("gelu_nores_m3n768k768", gemmNormCfg{gemmCfg: gemmCfg{Gemm: g, Bias: true}, Eps: 1e-12})
	// Alpha and Beta (C read before it is written), and views off
	// alignment in larger buffers.
	g = mnk(4, 33, 17)
	g.Alpha, g.Beta = 0.25, 0.5
	cs = append(cs, func() Case {
		c := gemmNormCase("alpha_beta_m4n33k17", gemmNormCfg{gemmCfg: gemmCfg{Gemm: g, Bias: true}, Other: true, Eps: 1e-5})
		c.Tensors[2].Fill = Normal(0, 1)
		return c
	}())
	add("offsets_m5n29k40", gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(5, 29, 40), Bias: true, Off: [4]int{3, 1, 7, 5}},
		Other: true, Sum: true, Eps: 1e-12, NormOff: [3]int{2, 9, 1}})
	// 16-bit weights, and half-precision products (fp16 decoding).
	for _, bt := range []gpu.DType{gpu.F16, gpu.BF16} {
		add(fmt.Sprintf("b%s_m1n768k768", bt), gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(1, 768, 768), BType: bt, Bias: true}, Other: true, Eps: 1e-12})
	}
	g = mnk(3, 31, 768)
	g.F16 = true
	for _, bt := range []gpu.DType{gpu.F32, gpu.F16} {
		add(fmt.Sprintf("f16_b%s_m3n31k768", bt), gemmNormCfg{gemmCfg: gemmCfg{Gemm: g, BType: bt, Bias: true}, Other: true, Eps: 1e-12})
	}
	// The norm's output over rows of A that other workgroups still read
	// (the rows of the next blocks of 8), and over A itself.
	for _, sh := range []int{8, 0} {
		add(fmt.Sprintf("y_over_a%d_m24n64k64", sh), gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(24, 64, 64), Bias: true}, Other: true,
			Eps: 1e-12, YOverA: true, YShift: sh})
	}
	// What runs as two calls: more rows than decoding's, saved statistics.
	add("rows_m35n768k768", gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(35, 768, 768), Bias: true}, Other: true, Eps: 1e-12})
	add("stats_m3n33k64", gemmNormCfg{gemmCfg: gemmCfg{Gemm: mnk(3, 33, 64), Bias: true}, Other: true, Stats: true, Eps: 1e-12})
	return cs
}

func gemmNormErrorCases() []ErrorCase {
	// A valid 3x4 @ (5x4)^T and the LayerNorm of C + R.
	valid := func(e *Env) gpu.GemmNorm {
		return gpu.GemmNorm{
			G: gpu.Gemm{A: e.F32(12), B: e.F32(20), C: e.F32(15), M: 3, N: 5, K: 4, TransB: true},
			L: gpu.LayerNorm{R: e.F32(15), Gamma: e.F32(5), Beta: e.F32(5), Y: e.F32(15), Rows: 3, Cols: 5, Eps: 1e-5},
		}
	}
	withC := func(e *Env) gpu.GemmNorm { c := valid(e); c.L.X = c.G.C; return c }
	return []ErrorCase{
		{"l_reads_no_c", "gemm_norm", func(e *Env) gpu.Call { c := valid(e); c.L.X = e.F32(15); return c }},
		{"g_bad", "gemm_norm", func(e *Env) gpu.Call { c := withC(e); c.G.A = e.F32(11); return c }},
		{"l_bad", "gemm_norm", func(e *Env) gpu.Call { c := withC(e); c.L.Eps = 0; return c }},
		{"rows_mismatch", "gemm_norm", func(e *Env) gpu.Call { c := withC(e); c.L.Rows = 2; return c }},
		{"batched", "gemm_norm", func(e *Env) gpu.Call {
			c := withC(e)
			c.G.Batch, c.G.StrideA, c.G.StrideB = 2, 0, 0
			c.G.C = e.F32(30)
			c.L.X = c.G.C
			return c
		}},
		{"ldc_gap", "gemm_norm", func(e *Env) gpu.Call {
			c := withC(e)
			c.G.C, c.G.LdC = e.F32(18), 6
			c.L.X = c.G.C
			return c
		}},
		{"y_overlaps_c", "gemm_norm", func(e *Env) gpu.Call {
			c := valid(e)
			buf := e.F32(20)
			c.G.C, c.L.X, c.L.Y = buf.Slice(0, 15), buf.Slice(0, 15), buf.Slice(5, 15)
			return c
		}},
		{"r_overlaps_c", "gemm_norm", func(e *Env) gpu.Call {
			c := valid(e)
			buf := e.F32(20)
			c.G.C, c.L.X, c.L.R = buf.Slice(0, 15), buf.Slice(0, 15), buf.Slice(1, 15)
			return c
		}},
		{"y_foreign", "gemm_norm", func(e *Env) gpu.Call { c := withC(e); c.L.Y = e.Foreign(gpu.F32, 15); return c }},
	}
}
