package paritytest

import (
	"fmt"

	"blip/gpu"
)

// Cases of the 16-bit storage kernels: Cast between every pair of types
// (rounding, ties, subnormals, overflow and NaN), and Gemm with B in F16
// or BF16 at odd shapes and offsets (scalar and vec4 loads) and at the
// shapes of BLIP's linear layers.

func init() { register(precisionCases) }

// castValues covers normal values on many scales, exact halfway cases of
// both formats, f16 subnormals and the smallest ones, values beyond the
// f16 range and the specials.
func castValues() Fill {
	specials := []float64{0, negZero(), 1, -1, 65504, 65519.99, 65520, -70000, 1e-8, 2.98e-8, 5.96e-8, 6.1e-5,
		-6.09e-5, 1 + 1.0/2048, 1 + 3.0/2048, 1 + 1.0/256, 1 + 3.0/256, 3.3895314e38, 1e39, inf, ninf, nan, 1e-40}
	return Func(func(i int) float64 {
		if i < len(specials) {
			return specials[i]
		}
		// Magnitudes 2^-30 .. 2^20, signs alternating, irregular mantissas.
		e := float64(i%51) - 30
		m := 1 + float64((i*7919)%1000)/1000
		v := m * pow2(e)
		if i%2 == 1 {
			v = -v
		}
		return v
	})
}

func negZero() float64 { z := 0.0; return -z }

func pow2(e float64) float64 {
	v := 1.0
	for ; e > 0; e-- {
		v *= 2
	}
	for ; e < 0; e++ {
		v /= 2
	}
	return v
}

func castCase(from, to gpu.DType, n, offX, offY int) Case {
	name := fmt.Sprintf("cast/%s_%s_n%d_off%d_%d", from, to, n, offX, offY)
	return Case{
		Name: name, Kernel: "cast",
		Tensors: []Tensor{
			{Name: "X", DType: from, Len: n, Off: offX, Fill: castValues()},
			{Name: "Y", DType: to, Len: n, Off: offY, Fill: Const(7), Out: true},
		},
		Build: func(v []gpu.View) gpu.Call { return gpu.Cast{X: v[0], Y: v[1], N: n} },
		Ref: func(x [][]float64) {
			copy(x[1], x[0]) // rounded to Y's type by the harness
		},
	}
}

func precisionCases() []Case {
	var cs []Case
	types := []gpu.DType{gpu.F32, gpu.F16, gpu.BF16}
	for _, from := range types {
		for _, to := range types {
			cs = append(cs, castCase(from, to, 1, 0, 0), castCase(from, to, 1031, 1, 3))
		}
	}
	cs = append(cs, castCase(gpu.F32, gpu.F16, 4096, 0, 0))
	// Every f16 code widened (the shaders' f16_bits_to_f32: normals,
	// subnormals, zeros, Inf and NaN of both signs).
	all := castCase(gpu.F16, gpu.F32, 1<<16, 0, 0)
	all.Name = "cast/f16_f32_every_code"
	all.Tensors[0].Fill = Func(func(i int) float64 { return float64(gpu.F16ToF32(uint16(i))) })
	cs = append(cs, all)

	add := func(name string, g gemmCfg) { cs = append(cs, gemmCase(name, g)) }
	for _, bt := range []gpu.DType{gpu.F16, gpu.BF16} {
		p := bt.String() + "b_"
		for _, s := range [][3]int{{1, 1, 1}, {7, 5, 3}, {65, 63, 129}, {1, 129, 65}} {
			for _, tb := range []bool{false, true} {
				g := gpu.Gemm{M: s[0], N: s[1], K: s[2], TransB: tb}
				add(fmt.Sprintf("%sm%dn%dk%d_tb%v", p, s[0], s[1], s[2], tb), gemmCfg{Gemm: g, BType: bt})
			}
		}
		// Odd offsets and leading dimensions (scalar B loads), with bias,
		// GELU and accumulation into C.
		g := gpu.Gemm{M: 37, N: 29, K: 41, LdA: 45, LdB: 43, LdC: 31, TransB: true, Beta: 1, Act: gpu.ActGELU, Alpha: 0.15}
		add(p+"offsets_m37n29k41", gemmCfg{Gemm: g, Bias: true, BType: bt, Off: [4]int{3, 1, 7, 5}})
		// Batched with a broadcast B (one weight, many rows).
		g = gpu.Gemm{M: 19, N: 24, K: 32, Batch: 3, StrideA: 19 * 32, TransB: true}
		add(p+"batch_broadcast_m19n24k32", gemmCfg{Gemm: g, BType: bt})
		// BLIP linear layers: ViT-B/16 at 384px (577 tokens), and a
		// text decode step (1 token) against the 30524-word LM head.
		n := 3072 // fc1; attention's output projection for bf16 keeps the table quick
		if bt == gpu.BF16 {
			n = 768
		}
		g = gpu.Gemm{M: 577, N: n, K: 768, TransB: true}
		add(fmt.Sprintf("%svit_m577n%dk768", p, n), gemmCfg{Gemm: g, BType: bt, Bias: true, Tol: 2e-4})
		g = gpu.Gemm{M: 3, N: 30524, K: 768, TransB: true}
		add(p+"lm_head_m3n30524k768", gemmCfg{Gemm: g, BType: bt, Bias: true, Tol: 2e-4})
	}
	return cs
}

func init() { registerErrors(precisionErrorCases) }

func precisionErrorCases() []ErrorCase {
	gemm := func(e *Env) gpu.Gemm { // a valid 3x4 @ 4x5 with B in f16
		return gpu.Gemm{A: e.F32(12), B: e.V(gpu.F16, 20), C: e.F32(15), M: 3, N: 5, K: 4}
	}
	return []ErrorCase{
		{"x_i32", "cast", func(e *Env) gpu.Call { return gpu.Cast{X: e.I32(4), Y: e.V(gpu.F16, 4), N: 4} }},
		{"y_i32", "cast", func(e *Env) gpu.Call { return gpu.Cast{X: e.F32(4), Y: e.I32(4), N: 4} }},
		{"y_too_small", "cast", func(e *Env) gpu.Call { return gpu.Cast{X: e.F32(4), Y: e.V(gpu.BF16, 3), N: 4} }},
		{"n_zero", "cast", func(e *Env) gpu.Call { return gpu.Cast{X: e.F32(4), Y: e.V(gpu.F16, 4)} }},
		{"overlap", "cast", func(e *Env) gpu.Call {
			x := e.F32(8)
			y := gpu.View{Buf: x.Buf, Off: 2, Len: 8, DType: gpu.F16} // bytes 4..20 inside x's 0..32
			return gpu.Cast{X: x.Slice(0, 4), Y: y, N: 4}
		}},
		{"all_foreign", "cast", func(e *Env) gpu.Call {
			return gpu.Cast{X: e.Foreign(gpu.F32, 4), Y: e.Foreign(gpu.F16, 4), N: 4}
		}},
		{"b_f16_too_small", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.B = e.V(gpu.F16, 19); return g }},
		{"a_i32_b_f16", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.A = e.I32(12); return g }},
		{"c_i32_b_f16", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.C = e.I32(15); return g }},
		{"bias_f16", "gemm", func(e *Env) gpu.Call { g := gemm(e); g.Bias = e.V(gpu.F16, 5); return g }},
	}
}
