package paritytest

import (
	"fmt"
	"math"

	"blip/gpu"
)

// Cases returns the table: edge shapes and special values for every kernel
// of gpu.KernelNames, and the shapes BLIP runs.
func Cases() []Case {
	var cs []Case
	cs = append(cs, gemmCases()...)
	cs = append(cs, unaryCases()...)
	cs = append(cs, binaryCases()...)
	cs = append(cs, reduceCases()...)
	cs = append(cs, softmaxCases()...)
	cs = append(cs, layerNormCases()...)
	cs = append(cs, embeddingCases()...)
	cs = append(cs, argMaxCases()...)
	cs = append(cs, topKCases()...)
	cs = append(cs, permuteCases()...)
	for _, f := range registered {
		cs = append(cs, f()...)
	}
	return cs
}

// registered holds the case builders of other files (one file per group of
// kernels adds itself in init), so the table grows without edits here.
var registered []func() []Case

func register(f func() []Case) { registered = append(registered, f) }

var (
	nan  = math.NaN()
	inf  = math.Inf(1)
	ninf = math.Inf(-1)
)

func f32(name string, n int, f Fill) Tensor {
	return Tensor{Name: name, DType: gpu.F32, Len: n, Fill: f}
}

func i32(name string, n int, f Fill) Tensor {
	return Tensor{Name: name, DType: gpu.I32, Len: n, Fill: f}
}

// storedUnit is what storing a result in d may add to a case's error
// (relative to the output's scale): 0 for f32, whose rounding the harness
// does too; one unit in the last place of the 16-bit types, 2^-10 (f16) and
// 2^-7 (bf16) at the scale, because a result within the fp32 tolerance of
// the exact one may round to the neighbouring 16-bit value.
func storedUnit(d gpu.DType) float64 {
	switch d {
	case gpu.F16:
		return 1.0 / 1024
	case gpu.BF16:
		return 1.0 / 128
	}
	return 0
}

func (t Tensor) at(off int) Tensor { t.Off = off; return t }
func (t Tensor) out() Tensor       { t.Out = true; return t }

// lin is n values evenly spaced over [lo, hi], then the given specials.
func lin(lo, hi float64, n int, specials ...float64) (Fill, int) {
	return Func(func(i int) float64 {
		if i >= n {
			return specials[i-n]
		}
		if n == 1 {
			return lo
		}
		return lo + (hi-lo)*float64(i)/float64(n-1)
	}), n + len(specials)
}

// ---- gemm ----------------------------------------------------------------

type gemmCfg struct {
	gpu.Gemm           // the template: shapes and scalars, no views
	Bias     bool      // add a Bias view
	BType    gpu.DType // B's type: F32 (the zero value), F16 or BF16
	AType    gpu.DType // A's, the same (16-bit activations)
	CType    gpu.DType // C's, the same
	Off      [4]int    // view offsets of A, B, C, Bias
	CFill    *Fill     // initial C; default NaN garbage for Beta 0, N(0,1) otherwise
	Tol      float64
}

func gemmCase(name string, g gemmCfg) Case {
	t := g.Gemm
	batch := max(t.Batch, 1)
	ar, ac, br, bc := t.M, t.K, t.K, t.N
	if t.TransA {
		ar, ac = t.K, t.M
	}
	if t.TransB {
		br, bc = t.N, t.K
	}
	ld := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	lda, ldb, ldc := ld(t.LdA, ac), ld(t.LdB, bc), ld(t.LdC, t.N)
	sc := int(t.StrideC)
	if sc == 0 {
		sc = t.M * ldc
	}
	spanA := (batch-1)*int(t.StrideA) + (ar-1)*lda + ac
	spanB := (batch-1)*int(t.StrideB) + (br-1)*ldb + bc
	spanC := (batch-1)*sc + (t.M-1)*ldc + t.N
	cf := Normal(0, 1)
	if t.Beta == 0 {
		cf = Const(nan) // C must not be read
	}
	if g.CFill != nil {
		cf = *g.CFill
	}
	tol := g.Tol
	if tol == 0 {
		tol = 1e-4
	}
	ts := []Tensor{
		{Name: "A", DType: g.AType, Len: spanA, Fill: Normal(0, 1), Off: g.Off[0]},
		{Name: "B", DType: g.BType, Len: spanB, Fill: Normal(0, 1), Off: g.Off[1]},
		{Name: "C", DType: g.CType, Len: spanC, Fill: cf, Off: g.Off[2], Out: true, Tol: tol + storedUnit(g.CType)},
	}
	if g.Bias {
		ts = append(ts, f32("Bias", t.N, Normal(0, 1)).at(g.Off[3]))
	}
	return Case{
		Name: "gemm/" + name, Kernel: "gemm", Tol: tol, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.A, c.B, c.C = v[0], v[1], v[2]
			if g.Bias {
				c.Bias = v[3]
			}
			return c
		},
		Ref: func(x [][]float64) {
			var bias []float64
			if g.Bias {
				bias = x[3]
			}
			refGemm(t, x[0], x[1], x[2], bias)
		},
	}
}

func gemmCases() []Case {
	var cs []Case
	add := func(name string, g gemmCfg) { cs = append(cs, gemmCase(name, g)) }
	mnk := func(m, n, k int) gpu.Gemm { return gpu.Gemm{M: m, N: n, K: k} }

	// Sizes 1, odd, and around typical tiles (64, 128).
	for _, s := range [][3]int{{1, 1, 1}, {1, 1, 7}, {7, 5, 3}, {1, 129, 65}, {65, 1, 127},
		{63, 65, 127}, {65, 63, 129}, {127, 129, 63}, {129, 127, 65}, {128, 64, 32},
		{16, 31, 257}, {20, 17, 9}, {22, 33, 300}, {15, 16, 16}} {
		add(fmt.Sprintf("m%dn%dk%d", s[0], s[1], s[2]), gemmCfg{Gemm: mnk(s[0], s[1], s[2])})
	}
	// All four transpose combinations, packed and with leading dimensions
	// larger than the stored row.
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			name := map[bool]string{false: "n", true: "t"}
			g := mnk(67, 45, 33)
			g.TransA, g.TransB = ta, tb
			add("trans_"+name[ta]+name[tb]+"_m67n45k33", gemmCfg{Gemm: g})
			g.LdA, g.LdB, g.LdC = 70, 71, 50
			add("trans_"+name[ta]+name[tb]+"_ld_m67n45k33", gemmCfg{Gemm: g})
		}
	}
	// Long K.
	g := mnk(33, 65, 4096)
	add("m33n65k4096", gemmCfg{Gemm: g})
	g.TransB = true
	add("m33n65k4096_tb", gemmCfg{Gemm: g})

	// Epilogues: bias, GELU and tanh (Alpha 1/sqrt(K) keeps the
	// pre-activations where the functions bend), Alpha, Beta accumulation.
	g = mnk(65, 97, 129)
	g.Alpha = float32(1 / math.Sqrt(129))
	add("bias_m65n97k129", gemmCfg{Gemm: g, Bias: true})
	g.Act = gpu.ActGELU
	add("bias_gelu_m65n97k129", gemmCfg{Gemm: g, Bias: true})
	g.Act = gpu.ActTanh
	add("bias_tanh_m65n97k129", gemmCfg{Gemm: g, Bias: true})
	g.Act = gpu.ActGELU
	add("gelu_nobias_m65n97k129", gemmCfg{Gemm: g})
	g = mnk(31, 33, 17)
	g.Beta = 1
	add("beta1_m31n33k17", gemmCfg{Gemm: g})
	g.Alpha, g.Beta = -0.5, 0.75
	g.TransA = true
	add("alpha_beta_ta_m31n33k17", gemmCfg{Gemm: g})
	g = mnk(31, 33, 17)
	g.Beta, g.Act, g.Alpha = 1, gpu.ActTanh, 0.25
	add("beta1_bias_tanh_m31n33k17", gemmCfg{Gemm: g, Bias: true})
	g.Beta, g.Act = 0.5, gpu.ActGELU
	add("beta_half_bias_gelu_m31n33k17", gemmCfg{Gemm: g, Bias: true})

	// Views at unaligned offsets inside larger buffers, with gaps (LdC > N;
	// C starts as NaN garbage and the gaps must stay NaN).
	g = mnk(37, 29, 41)
	g.LdA, g.LdC, g.TransB = 45, 31, true
	add("offsets_m37n29k41", gemmCfg{Gemm: g, Bias: true, Off: [4]int{3, 1, 7, 5}})
	g.Beta = 1
	add("offsets_beta1_m37n29k41", gemmCfg{Gemm: g, Bias: true, Off: [4]int{5, 3, 1, 2}})

	// Batched, with strides, broadcast (stride 0) and gaps between batches.
	g = mnk(19, 23, 29)
	g.Batch = 3
	add("batch3_packed", gemmCfg{Gemm: g})
	g.StrideA = 0
	g.StrideB = int64(29 * 23)
	add("batch3_broadcast_a", gemmCfg{Gemm: g})
	g.StrideA, g.StrideB = int64(19*29), 0
	add("batch3_broadcast_b", gemmCfg{Gemm: g, Bias: true})
	g.TransA, g.StrideA = true, 0
	add("batch3_broadcast_a_ta", gemmCfg{Gemm: g})
	g = mnk(19, 23, 29)
	g.Batch, g.TransA, g.TransB = 4, true, true
	g.LdA, g.LdB, g.LdC = 21, 33, 25
	g.StrideA, g.StrideB, g.StrideC = 29*21+4, 23*33+1, 19*25+7
	add("batch4_strided_ld_tt", gemmCfg{Gemm: g, Off: [4]int{1, 2, 3, 0}})
	g.Beta = 1
	add("batch4_strided_ld_tt_beta1", gemmCfg{Gemm: g})

	// BLIP attention over 12 heads of 64 read in place from a (577, 768)
	// activation: head h starts at column 64h (StrideA 64, LdA 768).
	// Scores: Q @ K^T * 1/8; context: P @ V.
	g = gpu.Gemm{Batch: 12, M: 577, N: 577, K: 64, TransB: true, LdA: 768, LdB: 768,
		StrideA: 64, StrideB: 64, Alpha: 0.125}
	add("blip_attn_scores_12x577x577x64", gemmCfg{Gemm: g})
	g = gpu.Gemm{Batch: 12, M: 577, N: 64, K: 577, LdB: 768, StrideA: 577 * 577, StrideB: 64}
	add("blip_attn_context_12x577x64x577", gemmCfg{Gemm: g})

	// BLIP ViT-B linear layers, weights stored (out, in) as in PyTorch.
	g = gpu.Gemm{M: 577, N: 2304, K: 768, TransB: true}
	add("blip_qkv_577x768x2304", gemmCfg{Gemm: g, Bias: true})
	g = gpu.Gemm{M: 577, N: 3072, K: 768, TransB: true, Act: gpu.ActGELU, Alpha: float32(1 / math.Sqrt(768))}
	add("blip_mlp_gelu_577x768x3072", gemmCfg{Gemm: g, Bias: true})
	return cs
}

// ---- unary ---------------------------------------------------------------

type unaryCfg struct {
	Op         gpu.UnaryOp
	Alpha      float32
	X          Fill
	N          int
	DType      gpu.DType
	OffX, OffY int
	Alias      bool // Y is X
	Tol, Floor float64
	YType      gpu.DType // F32 (the zero value), or F16/BF16 with an f32 X
}

func unaryCase(name string, u unaryCfg) Case {
	ts := []Tensor{{Name: "X", DType: u.DType, Len: u.N, Off: u.OffX, Fill: u.X}}
	if u.Alias {
		ts[0].Out = true
	} else {
		ts = append(ts, Tensor{Name: "Y", DType: u.DType, Len: u.N, Off: u.OffY, Fill: Const(nan), Out: true})
		if u.YType != gpu.F32 {
			ts[1].DType, ts[1].Tol = u.YType, u.Tol+storedUnit(u.YType)
		}
	}
	t := gpu.Unary{Op: u.Op, N: u.N, Alpha: u.Alpha}
	return Case{
		Name: "unary/" + name, Kernel: "unary", Tol: u.Tol, Floor: u.Floor, Block: 1, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y = v[0], v[len(v)-1]
			return c
		},
		Ref: func(x [][]float64) { refUnary(t, x[0], x[len(x)-1]) },
	}
}

func unaryCases() []Case {
	var cs []Case
	add := func(name string, u unaryCfg) { cs = append(cs, unaryCase(name, u)) }
	// Per-element tolerances: relative above magnitude 1 (Floor 1), or
	// relative everywhere for exp (Floor 1e-30: a flushed denormal passes).
	ops := []struct {
		name       string
		op         gpu.UnaryOp
		tol, floor float64
		alpha      float32
	}{
		{"copy", gpu.UnaryCopy, 0, 0, 0},
		{"scale", gpu.UnaryScale, 1e-6, 1e-30, -0.37},
		{"gelu", gpu.UnaryGELU, 1e-5, 0, 0},
		{"tanh", gpu.UnaryTanh, 1e-5, 0, 0},
		{"exp", gpu.UnaryExp, 1e-5, 1e-30, 0},
	}
	for _, o := range ops {
		base := unaryCfg{Op: o.op, Alpha: o.alpha, Tol: o.tol, Floor: o.floor, DType: gpu.F32}
		u := base
		u.N, u.X = 1, Const(0.5)
		add(o.name+"_n1", u)
		u = base
		u.N, u.X = 1031, Normal(0, 2)
		add(o.name+"_n1031", u)
		u.OffX, u.OffY = 3, 1
		add(o.name+"_n1031_off", u)
		u.OffX, u.Alias = 0, true
		add(o.name+"_n1031_alias", u)
	}
	// Special values and the ranges where the functions saturate.
	specials := map[string]struct {
		op         gpu.UnaryOp
		lo, hi     float64
		sp         []float64
		tol, floor float64
	}{
		"copy":  {gpu.UnaryCopy, -1e30, 1e30, []float64{nan, inf, ninf, -0.0, 1e-40}, 0, 0},
		"scale": {gpu.UnaryScale, -1e30, 1e30, []float64{nan, inf, ninf, -0.0, 0}, 1e-6, 1e-30},
		"gelu":  {gpu.UnaryGELU, -10, 10, []float64{-50, 50, -1e4, 1e4, 0, -0.0, 1e-6, -1e-6}, 1e-5, 0},
		"tanh":  {gpu.UnaryTanh, -10, 10, []float64{-20, 20, -100, 100, -1e4, 1e4, 0, 1e-6, -1e-6}, 1e-5, 0},
		"exp":   {gpu.UnaryExp, -30, 30, []float64{ninf, 100, 1000, -100, -1000, 0, 60, -80}, 2e-5, 1e-30},
	}
	for _, name := range []string{"copy", "scale", "gelu", "tanh", "exp"} {
		s := specials[name]
		f, n := lin(s.lo, s.hi, 601, s.sp...)
		add(name+"_range_specials", unaryCfg{Op: s.op, Alpha: -0.37, X: f, N: n, DType: gpu.F32, Tol: s.tol, Floor: s.floor})
	}
	// i32 copy and a large input.
	add("copy_i32", unaryCfg{Op: gpu.UnaryCopy, X: Ints(math.MinInt32, math.MaxInt32), N: 999, DType: gpu.I32, OffX: 3, OffY: 2})
	add("copy_i32_alias", unaryCfg{Op: gpu.UnaryCopy, X: Ints(-5, 5), N: 17, DType: gpu.I32, Alias: true})
	add("gelu_577x3072", unaryCfg{Op: gpu.UnaryGELU, X: Normal(0, 2), N: 577 * 3072, DType: gpu.F32, Tol: 1e-5})
	add("scale_577x768_alias", unaryCfg{Op: gpu.UnaryScale, Alpha: 0.125, X: Normal(0, 2), N: 577 * 768, DType: gpu.F32, Tol: 1e-6, Floor: 1e-30, Alias: true})
	return cs
}

// ---- binary --------------------------------------------------------------

type binaryCfg struct {
	Op           gpu.BinaryOp
	N, BN        int
	Off          [3]int
	AliasA       bool // C is A
	AliasB       bool // C is B (BN must be N)
	AFill, BFill Fill
}

func binaryCase(name string, b binaryCfg) Case {
	bn := b.BN
	if bn == 0 {
		bn = b.N
	}
	ts := []Tensor{f32("A", b.N, b.AFill).at(b.Off[0]), f32("B", bn, b.BFill).at(b.Off[1])}
	switch {
	case b.AliasA:
		ts[0].Out = true
	case b.AliasB:
		ts[1].Out = true
	default:
		ts = append(ts, f32("C", b.N, Const(nan)).at(b.Off[2]).out())
	}
	t := gpu.Binary{Op: b.Op, N: b.N, BN: b.BN}
	return Case{
		Name: "binary/" + name, Kernel: "binary", Tol: 1e-6, Floor: -1, Block: 1, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.A, c.B, c.C = v[0], v[1], v[len(v)-1]
			if b.AliasA {
				c.C = v[0]
			}
			return c
		},
		Ref: func(x [][]float64) {
			out := x[len(x)-1]
			if b.AliasA {
				out = x[0]
			}
			refBinary(t, x[0], x[1], out)
		},
	}
}

func binaryCases() []Case {
	var cs []Case
	add := func(name string, b binaryCfg) { cs = append(cs, binaryCase(name, b)) }
	ops := []struct {
		name string
		op   gpu.BinaryOp
	}{{"add", gpu.BinaryAdd}, {"sub", gpu.BinarySub}, {"mul", gpu.BinaryMul}, {"div", gpu.BinaryDiv}}
	for _, o := range ops {
		bf := Normal(0, 1)
		if o.op == gpu.BinaryDiv {
			bf = Uniform(0.5, 2)
		}
		base := binaryCfg{Op: o.op, AFill: Normal(0, 3), BFill: bf}
		b := base
		b.N = 1
		add(o.name+"_n1", b)
		b.N = 1031
		add(o.name+"_n1031", b)
		b.BN = 1031
		b.Off = [3]int{3, 1, 5}
		add(o.name+"_n1031_bn_n_off", b)
		b = base
		b.N, b.BN = 7*97, 97
		add(o.name+"_rows7_bn97", b)
		b.N, b.BN = 1031, 1
		add(o.name+"_n1031_bn1", b)
	}
	add("add_577x768_bn768", binaryCfg{Op: gpu.BinaryAdd, N: 577 * 768, BN: 768, AFill: Normal(0, 1), BFill: Normal(0, 1)})
	add("mul_alias_c_a_bn97", binaryCfg{Op: gpu.BinaryMul, N: 7 * 97, BN: 97, AliasA: true, AFill: Normal(0, 1), BFill: Normal(0, 1)})
	add("sub_alias_c_b", binaryCfg{Op: gpu.BinarySub, N: 1031, AliasB: true, AFill: Normal(0, 1), BFill: Normal(0, 1), Off: [3]int{1, 2, 0}})
	add("add_577x768_alias_c_a", binaryCfg{Op: gpu.BinaryAdd, N: 577 * 768, AliasA: true, AFill: Normal(0, 1), BFill: Normal(0, 1)})
	sp, n := lin(-3, 3, 20, nan, inf, ninf, 0, -0.0, 1e30)
	add("div_specials", binaryCfg{Op: gpu.BinaryDiv, N: n, AFill: Normal(0, 1).With(0, 0).With(1, inf), BFill: sp})
	add("mul_specials", binaryCfg{Op: gpu.BinaryMul, N: n, AFill: Normal(0, 1).With(21, nan), BFill: sp})
	return cs
}

// ---- reduce --------------------------------------------------------------

func reduceCase(name string, op gpu.ReduceOp, rows, cols int, x Fill, offX, offY int) Case {
	t := gpu.Reduce{Op: op, Rows: rows, Cols: cols}
	tol := 1e-5
	if op == gpu.ReduceMax {
		tol = 0
	}
	return Case{
		Name: "reduce/" + name, Kernel: "reduce", Tol: tol,
		Tensors: []Tensor{f32("X", rows*cols, x).at(offX), f32("Y", rows, Const(nan)).at(offY).out()},
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y = v[0], v[1]
			return c
		},
		Ref: func(x [][]float64) { refReduce(t, x[0], x[1]) },
	}
}

func reduceCases() []Case {
	var cs []Case
	ops := []struct {
		name string
		op   gpu.ReduceOp
	}{{"sum", gpu.ReduceSum}, {"max", gpu.ReduceMax}, {"mean", gpu.ReduceMean}}
	for _, o := range ops {
		for _, s := range [][2]int{{1, 1}, {65, 1}, {1, 1031}, {7, 97}, {577, 768}, {3, 30524}} {
			cs = append(cs, reduceCase(fmt.Sprintf("%s_%dx%d", o.name, s[0], s[1]), o.op, s[0], s[1], Normal(0.5, 2), 0, 0))
		}
		cs = append(cs, reduceCase(o.name+"_9x129_off", o.op, 9, 129, Normal(0, 1), 3, 1))
	}
	// Max over -Inf entries and a row of only -Inf; all-negative rows.
	f := Func(func(i int) float64 {
		r, c := i/33, i%33
		switch {
		case r == 0:
			return ninf
		case r == 1 && c%3 == 0:
			return ninf
		case r == 2:
			return -1000 - float64(c)
		}
		return math.Sin(float64(i))
	})
	cs = append(cs, reduceCase("max_neg_inf_5x33", gpu.ReduceMax, 5, 33, f, 0, 0))
	return cs
}

// ---- softmax -------------------------------------------------------------

type softmaxCfg struct {
	Rows, Cols int
	Scale      float32
	MaskGroup  int
	X          Fill
	Mask       *Fill // nil: no mask
	Alias      bool
	Off        [3]int // X, Y, Mask
}

func softmaxCase(name string, s softmaxCfg) Case {
	n := s.Rows * s.Cols
	ts := []Tensor{f32("X", n, s.X).at(s.Off[0])}
	if s.Alias {
		ts[0].Out = true
	} else {
		ts = append(ts, f32("Y", n, Const(nan)).at(s.Off[1]).out())
	}
	if s.Mask != nil {
		g := max(s.MaskGroup, 1)
		ts = append(ts, f32("Mask", (s.Rows+g-1)/g*s.Cols, *s.Mask).at(s.Off[2]))
	}
	t := gpu.Softmax{Rows: s.Rows, Cols: s.Cols, Scale: s.Scale, MaskGroup: s.MaskGroup}
	yi := 1
	if s.Alias {
		yi = 0
	}
	return Case{
		// Per row, relative to the row's largest probability.
		Name: "softmax/" + name, Kernel: "softmax", Tol: 1e-5, Floor: -1, Block: s.Cols, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y = v[0], v[yi]
			if s.Mask != nil {
				c.Mask = v[len(v)-1]
			}
			return c
		},
		Ref: func(x [][]float64) {
			var m []float64
			if s.Mask != nil {
				m = x[len(x)-1]
			}
			refSoftmax(t, x[0], x[yi], m)
		},
	}
}

func softmaxCases() []Case {
	var cs []Case
	add := func(name string, s softmaxCfg) { cs = append(cs, softmaxCase(name, s)) }
	add("1x1", softmaxCfg{Rows: 1, Cols: 1, X: Normal(0, 1)})
	add("5x7", softmaxCfg{Rows: 5, Cols: 7, X: Normal(0, 1)})
	add("3x65_scale", softmaxCfg{Rows: 3, Cols: 65, X: Normal(0, 4), Scale: 0.3})
	add("4x129_large_values", softmaxCfg{Rows: 4, Cols: 129, X: Normal(50, 30)})
	add("577x577_attn_alias", softmaxCfg{Rows: 577, Cols: 577, X: Normal(0, 8), Scale: 0.125, Alias: true})
	add("4x30524_vocab", softmaxCfg{Rows: 4, Cols: 30524, X: Normal(0, 3), Scale: 1 / 0.7})

	// Attention scores (B 2, H 3, Tq 33, Tk 65) with a key-padding mask
	// (B, Tk): MaskGroup = H*Tq; the second sequence pads its last 20 keys.
	pad := func(v float64) *Fill {
		f := Func(func(i int) float64 {
			if i >= 65 && i%65 >= 45 {
				return v
			}
			return 0
		})
		return &f
	}
	add("keypad_mask_inf", softmaxCfg{Rows: 198, Cols: 65, MaskGroup: 99, Scale: 0.125, X: Normal(0, 8), Mask: pad(ninf)})
	add("keypad_mask_-1e9", softmaxCfg{Rows: 198, Cols: 65, MaskGroup: 99, Scale: 0.125, X: Normal(0, 8), Mask: pad(-1e9)})
	add("keypad_mask_f32min", softmaxCfg{Rows: 198, Cols: 65, MaskGroup: 99, Scale: 0.125, X: Normal(0, 8), Mask: pad(-math.MaxFloat32)})

	// A causal mask per row (MaskGroup 1) with fully masked rows 2 and 4,
	// which must give zeros.
	causal := Func(func(i int) float64 {
		r, c := i/17, i%17
		if r == 2 || r == 4 || c > r+3 {
			return ninf
		}
		return 0
	})
	add("causal_fully_masked_rows", softmaxCfg{Rows: 6, Cols: 17, X: Normal(0, 1), Mask: &causal})
	add("causal_fully_masked_rows_off", softmaxCfg{Rows: 6, Cols: 17, MaskGroup: 1, X: Normal(0, 1), Mask: &causal, Off: [3]int{3, 1, 5}})

	// -Inf in X: some entries, and a row of only -Inf.
	xinf := Func(func(i int) float64 {
		r, c := i/33, i%33
		if r == 1 || (r == 3 && c%2 == 0) {
			return ninf
		}
		return math.Cos(float64(i))
	})
	add("neg_inf_in_x", softmaxCfg{Rows: 5, Cols: 33, X: xinf})

	// MaskGroup 2 over an odd number of rows: the last group is partial.
	m := Normal(0, 1)
	add("maskgroup2_rows7_off", softmaxCfg{Rows: 7, Cols: 31, MaskGroup: 2, Scale: 2, X: Normal(0, 1), Mask: &m, Off: [3]int{1, 3, 2}})
	return cs
}

// ---- layernorm -----------------------------------------------------------

type layerNormCfg struct {
	Rows, Cols int
	Eps        float32
	X          Fill
	Mean, Rstd bool
	Alias      bool   // Y is X
	Off        [6]int // X, Y, Gamma, Beta, Mean, Rstd
	// Res adds a residual R (gpu.LayerNorm.R), Sum writes X + R to S;
	// AliasR makes Y the residual's memory. ResOff: R, S.
	Res, Sum, AliasR bool
	ResOff           [2]int
	YType            gpu.DType // Y's type: F32 (the zero value), F16 or BF16
}

func layerNormCase(name string, l layerNormCfg) Case {
	n := l.Rows * l.Cols
	ts := []Tensor{f32("X", n, l.X).at(l.Off[0])}
	yi := 0 // Y: X's memory, R's, or its own
	ri := -1
	if l.Res {
		ri = len(ts)
		ts = append(ts, f32("R", n, Normal(0.5, 1.5)).at(l.ResOff[0]))
	}
	switch {
	case l.Alias:
		ts[0].Out = true
	case l.AliasR:
		yi = ri
		ts[ri].Out = true
	default:
		yi = len(ts)
		ts = append(ts, Tensor{Name: "Y", DType: l.YType, Len: n, Fill: Const(nan), Off: l.Off[1], Out: true, Tol: 1e-5 + storedUnit(l.YType)})
	}
	si := -1
	if l.Sum {
		si = len(ts)
		ts = append(ts, f32("S", n, Const(nan)).at(l.ResOff[1]).out())
	}
	gi := len(ts)
	ts = append(ts, f32("Gamma", l.Cols, Normal(1, 0.2)).at(l.Off[2]), f32("Beta", l.Cols, Normal(0, 0.2)).at(l.Off[3]))
	mi, rsi := -1, -1
	if l.Mean {
		mi = len(ts)
		ts = append(ts, f32("Mean", l.Rows, Const(nan)).at(l.Off[4]).out())
	}
	if l.Rstd {
		rsi = len(ts)
		ts = append(ts, f32("Rstd", l.Rows, Const(nan)).at(l.Off[5]).out())
	}
	t := gpu.LayerNorm{Rows: l.Rows, Cols: l.Cols, Eps: l.Eps}
	return Case{
		Name: "layernorm/" + name, Kernel: "layernorm", Tol: 1e-5, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y, c.Gamma, c.Beta = v[0], v[yi], v[gi], v[gi+1]
			if ri >= 0 {
				c.R = v[ri]
			}
			if si >= 0 {
				c.S = v[si]
			}
			if mi >= 0 {
				c.Mean = v[mi]
			}
			if rsi >= 0 {
				c.Rstd = v[rsi]
			}
			return c
		},
		Ref: func(x [][]float64) {
			var mean, rstd []float64
			if mi >= 0 {
				mean = x[mi]
			}
			if rsi >= 0 {
				rstd = x[rsi]
			}
			in := x[0]
			if ri >= 0 {
				// The fp32 sum, as a Binary add stores it.
				in = make([]float64, n)
				for i := range in {
					in[i] = float64(float32(x[0][i] + x[ri][i]))
				}
				if si >= 0 {
					copy(x[si], in)
				}
			}
			refLayerNorm(t, in, x[yi], x[gi], x[gi+1], mean, rstd)
		},
	}
}

func layerNormCases() []Case {
	var cs []Case
	add := func(name string, l layerNormCfg) { cs = append(cs, layerNormCase(name, l)) }
	add("1x1", layerNormCfg{Rows: 1, Cols: 1, Eps: 1e-12, X: Normal(0, 1), Mean: true, Rstd: true})
	add("5x1", layerNormCfg{Rows: 5, Cols: 1, Eps: 1e-5, X: Normal(0, 1)})
	add("7x33_eps1e-12", layerNormCfg{Rows: 7, Cols: 33, Eps: 1e-12, X: Normal(0, 1)})
	add("577x768_vit", layerNormCfg{Rows: 577, Cols: 768, Eps: 1e-6, X: Normal(0.3, 2), Mean: true, Rstd: true})
	add("35x768_bert", layerNormCfg{Rows: 35, Cols: 768, Eps: 1e-12, X: Normal(0, 1)})
	// Mean far from zero: a one-pass E[x^2]-E[x]^2 in fp32 fails this.
	add("9x768_mean_offset_100", layerNormCfg{Rows: 9, Cols: 768, Eps: 1e-12, X: Normal(100, 1), Mean: true, Rstd: true})
	// Constant rows: zero variance, Y = Beta.
	add("4x64_constant_rows", layerNormCfg{Rows: 4, Cols: 64, Eps: 1e-5, X: Func(func(i int) float64 { return float64(i/64) - 1.5 }), Rstd: true})
	add("5x129_alias_rstd_only", layerNormCfg{Rows: 5, Cols: 129, Eps: 1e-6, X: Normal(0, 1), Alias: true, Rstd: true})
	add("11x65_off", layerNormCfg{Rows: 11, Cols: 65, Eps: 1e-6, X: Normal(-1, 3), Mean: true, Rstd: true, Off: [6]int{3, 1, 2, 5, 7, 9}})
	// With a residual (an add fused in): BERT's post-norm (the sum not
	// kept), the ViT's pre-norm (the sum kept for the next residual), Y
	// over X or over R, odd sizes and offsets.
	add("res_1x1_sum", layerNormCfg{Rows: 1, Cols: 1, Eps: 1e-12, X: Normal(0, 1), Res: true, Sum: true})
	add("res_35x768_bert", layerNormCfg{Rows: 35, Cols: 768, Eps: 1e-12, X: Normal(0, 1), Res: true})
	add("res_577x768_vit_sum", layerNormCfg{Rows: 577, Cols: 768, Eps: 1e-6, X: Normal(0.3, 2), Res: true, Sum: true})
	add("res_7x33_alias_x_sum_stats", layerNormCfg{Rows: 7, Cols: 33, Eps: 1e-5, X: Normal(100, 1), Res: true, Sum: true, Alias: true, Mean: true, Rstd: true})
	add("res_5x129_alias_r", layerNormCfg{Rows: 5, Cols: 129, Eps: 1e-6, X: Normal(0, 1), Res: true, AliasR: true})
	add("res_11x65_off_sum", layerNormCfg{Rows: 11, Cols: 65, Eps: 1e-6, X: Normal(-1, 3), Res: true, Sum: true, Rstd: true,
		Off: [6]int{3, 1, 2, 5, 7, 9}, ResOff: [2]int{6, 11}})
	return cs
}

// ---- embedding -----------------------------------------------------------

func embeddingCase(name string, n, dim, vocab int, ids Fill, off [3]int) Case {
	t := gpu.Embedding{N: n, Dim: dim, Vocab: vocab}
	return Case{
		Name: "embedding/" + name, Kernel: "embedding", Tol: 0,
		Tensors: []Tensor{
			f32("Table", vocab*dim, Normal(0, 1)).at(off[0]),
			i32("Ids", n, ids).at(off[1]),
			f32("Y", n*dim, Const(nan)).at(off[2]).out(),
		},
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.Table, c.Ids, c.Y = v[0], v[1], v[2]
			return c
		},
		Ref: func(x [][]float64) { refEmbedding(t, x[0], x[1], x[2]) },
	}
}

func embeddingCases() []Case {
	ids := Ints(0, 1000).With(0, 0).With(1, 999).With(2, -1).With(3, 1000).
		With(4, math.MaxInt32).With(5, math.MinInt32).With(39, 999)
	return []Case{
		embeddingCase("1x1x1", 1, 1, 1, Const(0), [3]int{}),
		embeddingCase("n40_dim768_vocab1000_out_of_range", 40, 768, 1000, ids, [3]int{}),
		embeddingCase("n9_dim65_vocab31_off", 9, 65, 31, Ints(-3, 34), [3]int{3, 1, 5}),
		embeddingCase("n577_dim768_vocab50", 577, 768, 50, Ints(0, 50), [3]int{}),
	}
}

// ---- argmax --------------------------------------------------------------

func argMaxCase(name string, rows, cols int, x Fill, off [2]int) Case {
	t := gpu.ArgMax{Rows: rows, Cols: cols}
	return Case{
		Name: "argmax/" + name, Kernel: "argmax",
		Tensors: []Tensor{f32("X", rows*cols, x).at(off[0]), i32("Y", rows, Const(-7)).at(off[1]).out()},
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y = v[0], v[1]
			return c
		},
		Ref: func(x [][]float64) { refArgMax(t, x[0], x[1]) },
	}
}

// argMaxNLLCase is argMaxCase with NLL: the cross-entropy at the pick, as
// refCrossEntropy computes it for that label.
func argMaxNLLCase(name string, rows, cols int, x Fill, off [3]int) Case {
	c := argMaxCase("nll_"+name, rows, cols, x, [2]int{off[0], off[1]})
	c.Tol = 1e-5
	c.Block = 1 // each row's loss on its own scale
	c.Tensors = append(c.Tensors, f32("NLL", rows, Const(nan)).at(off[2]).out())
	build := c.Build
	c.Build = func(v []gpu.View) gpu.Call {
		a := build(v).(gpu.ArgMax)
		a.NLL = v[2]
		return a
	}
	c.Ref = func(x [][]float64) {
		t := gpu.ArgMax{Rows: rows, Cols: cols}
		refArgMax(t, x[0], x[1])
		refCrossEntropy(gpu.CrossEntropy{Rows: rows, Cols: cols}, x[0], x[1], x[2], nil)
	}
	return c
}

func argMaxCases() []Case {
	// Rows of 37: NaN first, NaN beside the maximum, only NaN, only -Inf,
	// +Inf twice, the maximum last, ties everywhere.
	special := Func(func(i int) float64 {
		r, c := i/37, i%37
		v := math.Sin(float64(i)*1.7) * 10
		switch r {
		case 0:
			if c == 0 {
				return nan
			}
		case 1:
			if c == 11 || c == 13 {
				return nan
			}
			if c == 12 {
				return 100
			}
		case 2:
			return nan
		case 3:
			return ninf
		case 4:
			if c == 30 || c == 36 {
				return inf
			}
		case 5:
			if c == 36 {
				return 11
			}
		case 6:
			return 2
		case 7:
			if c%5 == 0 {
				return nan
			}
			return -1e30
		}
		return v
	})
	return []Case{
		argMaxCase("1x1", 1, 1, Normal(0, 1), [2]int{}),
		argMaxCase("1x1_nan", 1, 1, Const(nan), [2]int{}),
		argMaxCase("8x37_specials", 8, 37, special, [2]int{}),
		argMaxCase("16x100_ties", 16, 100, Ints(0, 5), [2]int{}),
		argMaxCase("5x30524_vocab", 5, 30524, Normal(0, 3), [2]int{}),
		argMaxCase("577x65_off", 577, 65, Normal(0, 1), [2]int{3, 1}),
		argMaxCase("3x1031_ties_off", 3, 1031, Ints(-3, 3), [2]int{1, 2}),
		// With the pick's cross-entropy (greedy decoding's score): NaN
		// where a row holds a NaN, an infinity or only -Inf.
		argMaxNLLCase("1x1", 1, 1, Normal(0, 1), [3]int{}),
		argMaxNLLCase("8x37_specials", 8, 37, special, [3]int{}),
		argMaxNLLCase("16x100_ties", 16, 100, Ints(0, 5), [3]int{}),
		argMaxNLLCase("5x30524_vocab", 5, 30524, Normal(0, 3), [3]int{}),
		argMaxNLLCase("3x1031_off", 3, 1031, Normal(0, 10), [3]int{1, 2, 3}),
		argMaxNLLCase("32x30524_batch", 32, 30524, Normal(-2, 4), [3]int{}),
	}
}

// ---- topk ----------------------------------------------------------------

func topKCase(name string, rows, cols, k int, x Fill, off [3]int) Case {
	t := gpu.TopK{Rows: rows, Cols: cols, K: k}
	return Case{
		Name: "topk/" + name, Kernel: "topk",
		Tensors: []Tensor{
			f32("X", rows*cols, x).at(off[0]),
			f32("Vals", rows*k, Const(nan)).at(off[1]).out(),
			i32("Idx", rows*k, Const(-7)).at(off[2]).out(),
		},
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Vals, c.Idx = v[0], v[1], v[2]
			return c
		},
		Ref: func(x [][]float64) { refTopK(t, x[0], x[1], x[2]) },
	}
}

func topKCases() []Case {
	// Rows of 10: NaNs among numbers, ±Inf, a row of only NaN.
	special := Func(func(i int) float64 {
		r, c := i/10, i%10
		switch {
		case r == 3:
			return nan
		case c == 0 || c == 5:
			return nan
		case c == 3:
			return ninf
		case c == 7 && r != 2:
			return inf
		}
		return float64((i * 7) % 4)
	})
	return []Case{
		topKCase("1x1_k1", 1, 1, 1, Normal(0, 1), [3]int{}),
		topKCase("7x101_k1", 7, 101, 1, Normal(0, 1), [3]int{}),
		topKCase("3x37_k37_dups", 3, 37, 37, Ints(-4, 4), [3]int{}),
		topKCase("5x200_k50_dups", 5, 200, 50, Ints(0, 10), [3]int{}),
		topKCase("4x10_k10_nan_inf", 4, 10, 10, special, [3]int{}),
		topKCase("4x10_k4_nan_inf", 4, 10, 4, special, [3]int{}),
		topKCase("9x129_k17_off", 9, 129, 17, Normal(0, 1), [3]int{3, 1, 5}),
		topKCase("2x30524_k50_vocab", 2, 30524, 50, Normal(0, 3), [3]int{}),
		topKCase("3x57600_k256", 3, 57600, 256, Normal(0, 1), [3]int{}),
		topKCase("1x57600_k256_dups", 1, 57600, 256, Ints(0, 100), [3]int{}),
	}
}

// ---- permute -------------------------------------------------------------

func permuteCase(name string, d gpu.DType, shape, perm [4]int, off [2]int) Case {
	n := shape[0] * shape[1] * shape[2] * shape[3]
	fill := Normal(0, 1)
	if d == gpu.I32 {
		fill = Ints(math.MinInt32, math.MaxInt32)
	}
	t := gpu.Permute{Shape: shape, Perm: perm}
	return Case{
		Name: "permute/" + name, Kernel: "permute",
		Tensors: []Tensor{
			{Name: "X", DType: d, Len: n, Off: off[0], Fill: fill},
			{Name: "Y", DType: d, Len: n, Off: off[1], Fill: Const(-7), Out: true},
		},
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y = v[0], v[1]
			return c
		},
		Ref: func(x [][]float64) { refPermute(t, x[0], x[1]) },
	}
}

// perms lists the 24 permutations of 0..3.
func perms() [][4]int {
	var out [][4]int
	for a := range 4 {
		for b := range 4 {
			for c := range 4 {
				for d := range 4 {
					if a != b && a != c && a != d && b != c && b != d && c != d {
						out = append(out, [4]int{a, b, c, d})
					}
				}
			}
		}
	}
	return out
}

func permuteCases() []Case {
	var cs []Case
	for i, p := range perms() {
		name := fmt.Sprintf("2x3x4x5_%d%d%d%d", p[0], p[1], p[2], p[3])
		cs = append(cs, permuteCase(name, gpu.F32, [4]int{2, 3, 4, 5}, p, [2]int{}))
		if i%4 == 1 {
			cs = append(cs, permuteCase(name+"_i32_off", gpu.I32, [4]int{3, 5, 2, 7}, p, [2]int{3, 1}))
		}
	}
	cs = append(cs,
		permuteCase("1x1x1x1", gpu.F32, [4]int{1, 1, 1, 1}, [4]int{0, 1, 2, 3}, [2]int{}),
		permuteCase("identity_2x3x4x5_off", gpu.F32, [4]int{2, 3, 4, 5}, [4]int{0, 1, 2, 3}, [2]int{1, 3}),
		permuteCase("transpose_7x5", gpu.F32, [4]int{1, 1, 7, 5}, [4]int{0, 1, 3, 2}, [2]int{}),
		permuteCase("ones_3x1x65x1_3210", gpu.F32, [4]int{3, 1, 65, 1}, [4]int{3, 2, 1, 0}, [2]int{}),
		permuteCase("blip_split_heads_577x12x64", gpu.F32, [4]int{1, 577, 12, 64}, [4]int{0, 2, 1, 3}, [2]int{}),
		permuteCase("blip_merge_heads_12x577x64", gpu.F32, [4]int{1, 12, 577, 64}, [4]int{0, 2, 1, 3}, [2]int{}),
		permuteCase("batched_transpose_2x12x65x64_i32", gpu.I32, [4]int{2, 12, 65, 64}, [4]int{0, 1, 3, 2}, [2]int{5, 2}),
	)
	return cs
}
