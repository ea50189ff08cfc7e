package paritytest

import (
	"fmt"
	"math"

	"blip/gpu"
)

// query_attention: a decoder's cross-attention query projection and the
// attention (gpu.QueryAttention). Decoding's few queries (one to four rows
// per batch entry, on GPUs the split attention projecting each head's
// queries in its own workgroups): BLIP's cross-attention over 577 image
// tokens from 768 hidden units, beams, one key chunk and several, a mask,
// odd head sizes, f32, f16 and bf16 weights, F16 products; and what runs
// as the two calls (five query rows, hidden units or offsets off vec4
// alignment). Q is scratch: only O and LSE are compared.

func init() {
	register(queryAttentionCases)
	registerErrors(queryAttentionErrorCases)
}

type queryAttnCfg struct {
	gpu.AttentionShape
	C     int       // hidden units
	WType gpu.DType // the weight's storage
	Bias  bool
	Mask  bool
	F16   bool // the attention's
	PF16  bool // the projection's
	XOff  int  // element offset of X in its buffer
	// XFill and WFill replace the random X and W; Tol the tolerance.
	XFill, WFill *Fill
	Tol          float64
}

func queryAttentionCase(name string, c queryAttnCfg) Case {
	s := c.AttentionShape
	hd := s.H * s.D
	rows := s.B * s.Tq
	g := geom(attnCfg{AttentionShape: s})
	// W ~ N(0, 1/C): queries of unit scale, as with the keys.
	ts := []Tensor{
		f32("X", rows*c.C, Normal(0, 1)).at(c.XOff),
		{Name: "W", DType: c.WType, Len: hd * c.C, Fill: Normal(0, 1/math.Sqrt(float64(c.C)))},
		f32("Bias", hd, Normal(0, 0.5)),
		{Name: "Q", DType: gpu.F32, Len: rows * hd, Fill: Const(nan), Scratch: true},
		f32("K", g.lenK, Normal(0, 1)),
		f32("V", g.lenV, Normal(0, 1)),
	}
	if c.XFill != nil {
		ts[0].Fill = *c.XFill
	}
	if c.WFill != nil {
		ts[1].Fill = *c.WFill
	}
	iMask := -1
	if c.Mask {
		iMask = len(ts)
		ts = append(ts, f32("Mask", s.B*s.Tk, Func(func(i int) float64 {
			if i%s.Tk%3 == 1 {
				return math.Inf(-1)
			}
			return float64(i % 5)
		})))
	}
	iO := len(ts)
	ts = append(ts, f32("O", g.lenO, Const(nan)).out(), f32("LSE", s.B*s.H*s.Tq, Const(nan)).out())
	tol := attnTol
	if c.F16 {
		tol = attnF16Tol
	}
	if c.Tol != 0 {
		tol = c.Tol
	}
	name = "query_attention/" + name
	return Case{
		Name: name, Kernel: "query_attention", Tol: tol, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			p := gpu.Gemm{A: v[0], B: v[1], C: v[3], M: rows, N: hd, K: c.C, TransB: true, F16: c.PF16}
			if c.Bias {
				p.Bias = v[2]
			}
			a := gpu.Attention{Q: v[3], K: v[4], V: v[5], O: v[iO], LSE: v[iO+1], AttentionShape: s, F16: c.F16}
			if iMask >= 0 {
				a.Mask = v[iMask]
			}
			return gpu.QueryAttention{P: p, A: a}
		},
		Ref: memoRef(name, []int{iO, iO + 1}, func(t [][]float64) {
			x, w := t[0], t[1]
			if c.PF16 {
				x = roundF16(x)
				if c.WType == gpu.F32 {
					w = roundF16(w)
				}
			}
			// The queries as the projection stores them (fp32).
			q := make([]float64, rows*hd)
			for r := 0; r < rows; r++ {
				for n := 0; n < hd; n++ {
					var acc float64
					for k := 0; k < c.C; k++ {
						acc += x[r*c.C+k] * w[n*c.C+k]
					}
					if c.Bias {
						acc += t[2][n]
					}
					q[r*hd+n] = float64(float32(acc))
				}
			}
			var mask []float64
			if iMask >= 0 {
				mask = t[iMask]
			}
			if c.F16 {
				refAttentionF16(g, q, t[4], t[5], mask, t[iO], t[iO+1])
			} else {
				refAttention(g, q, t[4], t[5], mask, t[iO], t[iO+1])
			}
		}),
	}
}

func queryAttentionCases() []Case {
	var cs []Case
	add := func(name string, c queryAttnCfg) { cs = append(cs, queryAttentionCase(name, c)) }
	sh := func(b, h, tq, tk, d int) gpu.AttentionShape {
		return gpu.AttentionShape{B: b, H: h, Tq: tq, Tk: tk, D: d}
	}
	// BLIP base's cross-attention: a caption, three beams, a batch.
	add("base_b1", queryAttnCfg{AttentionShape: sh(1, 12, 1, 577, 64), C: 768, WType: gpu.F32, Bias: true})
	add("base_beams3_f16w", queryAttnCfg{AttentionShape: sh(1, 12, 3, 577, 64), C: 768, WType: gpu.F16, Bias: true})
	add("base_b3_bf16w", queryAttnCfg{AttentionShape: sh(3, 12, 1, 577, 64), C: 768, WType: gpu.BF16, Bias: true})
	// Half-precision products: both, the projection's only (fp16
	// decoding), the attention's only.
	for _, wt := range []gpu.DType{gpu.F32, gpu.F16} {
		add(fmt.Sprintf("f16_w%s_b2", wt), queryAttnCfg{AttentionShape: sh(2, 4, 1, 577, 64), C: 256, WType: wt, Bias: true, F16: true, PF16: true})
	}
	add("pf16_base_b1", queryAttnCfg{AttentionShape: sh(1, 12, 1, 577, 64), C: 768, WType: gpu.F16, Bias: true, PF16: true})
	add("af16_tk100", queryAttnCfg{AttentionShape: sh(1, 3, 2, 100, 16), C: 48, WType: gpu.F32, Bias: true, F16: true})
	// F16's rounding of X before the product, which the attention's own
	// rounding of the queries would mostly hide: X = (1 + 3 * 2^-12, -1,
	// ...) and every W row (1, 1, 0, 0) make each query 2^-10 (0.75 *
	// 2^-10 from unrounded X), f16 values both; with one key (p = 1) LSE
	// is Scale * q . k, summed exactly enough for attnF16ExactTol.
	xf := Func(func(i int) float64 { return []float64{1 + 3.0/4096, -1, 0.5, 0.25}[i%4] })
	wf := Func(func(i int) float64 { return float64(1 - i%4/2) })
	add("f16_x_rounding", queryAttnCfg{AttentionShape: sh(1, 1, 1, 1, 64), C: 4, WType: gpu.F32, F16: true, PF16: true,
		XFill: &xf, WFill: &wf, Tol: attnF16ExactTol})
	// The same of an f32 W: X (1, 1, 0, 0), W rows (1 + 3 * 2^-12, -1, ...).
	xf, wf = wf, xf
	add("f16_w_rounding", queryAttnCfg{AttentionShape: sh(1, 1, 1, 1, 64), C: 4, WType: gpu.F32, F16: true, PF16: true,
		XFill: &xf, WFill: &wf, Tol: attnF16ExactTol})
	// Small and odd: four rows, two chunks, a mask; one chunk; odd D.
	add("rows4_tk65_mask", queryAttnCfg{AttentionShape: sh(2, 3, 4, 65, 8), C: 12, WType: gpu.F32, Mask: true})
	add("tk30_one_chunk", queryAttnCfg{AttentionShape: sh(1, 2, 2, 30, 32), C: 64, WType: gpu.F32, Bias: true})
	add("tk1", queryAttnCfg{AttentionShape: sh(1, 1, 1, 1, 4), C: 4, WType: gpu.F32, Bias: true})
	add("d5_h3_tk129", queryAttnCfg{AttentionShape: sh(1, 3, 1, 129, 5), C: 20, WType: gpu.F16, Bias: true})
	add("c1024", queryAttnCfg{AttentionShape: sh(1, 2, 1, 100, 16), C: 1024, WType: gpu.F32, Bias: true})
	add("x_off4", queryAttnCfg{AttentionShape: sh(1, 2, 3, 70, 16), C: 36, WType: gpu.F32, Bias: true, XOff: 4})
	// The two calls: five rows, C off vec4, X off vec4, C past 1024.
	add("rows5", queryAttnCfg{AttentionShape: sh(1, 2, 5, 70, 16), C: 36, WType: gpu.F32, Bias: true})
	add("c30", queryAttnCfg{AttentionShape: sh(1, 2, 1, 70, 16), C: 30, WType: gpu.F32, Bias: true})
	add("x_off1", queryAttnCfg{AttentionShape: sh(1, 2, 1, 70, 16), C: 36, WType: gpu.F32, Bias: true, XOff: 1})
	add("c1028", queryAttnCfg{AttentionShape: sh(1, 2, 1, 70, 16), C: 1028, WType: gpu.F32, Bias: true})
	return cs
}

func queryAttentionErrorCases() []ErrorCase {
	// (B=1, H=2, Tq=1, Tk=3, D=2) over C = 4 hidden units.
	valid := func(e *Env) gpu.QueryAttention {
		q := e.F32(4)
		return gpu.QueryAttention{
			P: gpu.Gemm{A: e.F32(4), B: e.F32(16), C: q, M: 1, N: 4, K: 4, TransB: true},
			A: gpu.Attention{Q: q, K: e.F32(12), V: e.F32(12), O: e.F32(4), AttentionShape: gpu.AttentionShape{B: 1, H: 2, Tq: 1, Tk: 3, D: 2}},
		}
	}
	return []ErrorCase{
		{"c_not_q", "query_attention", func(e *Env) gpu.Call { c := valid(e); c.P.C = e.F32(4); return c }},
		{"not_linear", "query_attention", func(e *Env) gpu.Call { c := valid(e); c.P.Act = gpu.ActGELU; return c }},
		{"beta", "query_attention", func(e *Env) gpu.Call { c := valid(e); c.P.Beta = 1; return c }},
		{"not_transb", "query_attention", func(e *Env) gpu.Call {
			c := valid(e)
			c.P.TransB = false
			return c
		}},
		{"rows", "query_attention", func(e *Env) gpu.Call {
			c := valid(e)
			c.P.M, c.P.A, c.P.C = 2, e.F32(8), e.F32(8)
			c.A.Q = c.P.C
			return c
		}},
		{"o_over_x", "query_attention", func(e *Env) gpu.Call { c := valid(e); c.A.O = c.P.A; return c }},
		{"p_bad", "query_attention", func(e *Env) gpu.Call { c := valid(e); c.P.A = e.F32(3); return c }},
		{"a_bad", "query_attention", func(e *Env) gpu.Call { c := valid(e); c.A.K = e.F32(5); return c }},
	}
}
