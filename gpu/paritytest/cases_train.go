package paritytest

import (
	"fmt"
	"math"

	"blip/gpu"
)

// Parity cases of the training kernels (gpu/calls_train.go). Shapes: 1,
// odd, row counts on both sides of gpu.ColumnBlock (one stage or two), the
// 577 tokens of ViT-B/16 at 384 pixels, BERT's 768/3072 columns and 30524
// classes, unaligned view offsets, aliasing, accumulation on and off.

func init() {
	register(trainCases)
	registerErrors(trainErrorCases)
}

func trainCases() []Case {
	var cs []Case
	for _, f := range []func() []Case{layerNormBwdCases, softmaxBwdCases, actBwdCases, embeddingBwdCases,
		crossEntropyCases, dropoutCases, l2NormCases, l2NormBwdCases, adamWCases, colSumCases, copy2DCases} {
		cs = append(cs, f()...)
	}
	return cs
}

// tset builds the tensor list of a case by name; aliases make one name
// refer to another's tensor (DX aliasing DY).
type tset struct {
	ts  []Tensor
	idx map[string]int
}

func newTset() *tset { return &tset{idx: map[string]int{}} }

func (s *tset) add(t Tensor) {
	s.idx[t.Name] = len(s.ts)
	s.ts = append(s.ts, t)
}

// alias makes name refer to the tensor of to, which becomes an output.
func (s *tset) alias(name, to string) {
	i := s.idx[to]
	s.ts[i].Out = true
	s.idx[name] = i
}

func (s *tset) has(name string) bool { _, ok := s.idx[name]; return ok }

// v returns the view of name, or an unset view.
func (s *tset) v(v []gpu.View, name string) gpu.View {
	if i, ok := s.idx[name]; ok {
		return v[i]
	}
	return gpu.View{}
}

// d returns the data of name, or nil.
func (s *tset) d(x [][]float64, name string) []float64 {
	if i, ok := s.idx[name]; ok {
		return x[i]
	}
	return nil
}

// hashUnit is a uniform value in [0, 1) determined by (seed, i), for fills
// that must agree with each other (LayerNorm statistics of X).
func hashUnit(seed uint64, i int) float64 {
	z := seed + uint64(i+1)*0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// hashNormal is roughly N(0, 1) (a sum of four uniforms), determined by
// (seed, i) and rounded to f32.
func hashNormal(seed uint64, i int) float64 {
	s := hashUnit(seed, 4*i) + hashUnit(seed, 4*i+1) + hashUnit(seed, 4*i+2) + hashUnit(seed, 4*i+3)
	return float64(float32((s - 2) * math.Sqrt(3)))
}

// ---- layernorm_bwd -------------------------------------------------------

type lnBwdCfg struct {
	Rows, Cols  int
	Mean, Std   float64 // of X
	Eps         float64
	DGamma      bool
	DBeta       bool
	Alias       bool   // DX is DY
	ConstRows   bool   // every row of X constant
	Off         [9]int // X, DY, DX, Gamma, Mean, Rstd, DGamma, DBeta, Scratch
	Tol         float64
	ScratchSlop int // extra scratch elements beyond the required ones
}

func layerNormBwdCase(name string, l lnBwdCfg) Case {
	rows, cols := l.Rows, l.Cols
	seed := seed("layernorm_bwd", name)
	x := func(i int) float64 {
		if l.ConstRows {
			return float64(i/cols) - 1.5
		}
		return float64(float32(l.Mean + l.Std*hashNormal(seed, i)))
	}
	stats := func(r int) (mean, rstd float64) {
		for c := range cols {
			mean += x(r*cols + c)
		}
		mean /= float64(cols)
		var v float64
		for c := range cols {
			d := x(r*cols+c) - mean
			v += d * d
		}
		return mean, 1 / math.Sqrt(v/float64(cols)+l.Eps)
	}
	s := newTset()
	s.add(f32("X", rows*cols, Func(x)).at(l.Off[0]))
	s.add(f32("DY", rows*cols, Normal(0, 1)).at(l.Off[1]))
	if l.Alias {
		s.alias("DX", "DY")
	} else {
		s.add(f32("DX", rows*cols, Const(nan)).at(l.Off[2]).out())
	}
	s.add(f32("Gamma", cols, Normal(1, 0.2)).at(l.Off[3]))
	s.add(f32("Mean", rows, Func(func(r int) float64 { m, _ := stats(r); return m })).at(l.Off[4]))
	s.add(f32("Rstd", rows, Func(func(r int) float64 { _, rs := stats(r); return rs })).at(l.Off[5]))
	if l.DGamma {
		s.add(f32("DGamma", cols, Normal(0, 1)).at(l.Off[6]).out())
	}
	if l.DBeta {
		s.add(f32("DBeta", cols, Normal(0, 1)).at(l.Off[7]).out())
	}
	if n := 2 * gpu.ColumnScratchLen(rows, cols); n > 0 && (l.DGamma || l.DBeta) {
		s.add(f32("Scratch", int(n)+l.ScratchSlop, Const(nan)).at(l.Off[8]).out())
	}
	t := gpu.LayerNormBackward{Rows: rows, Cols: cols}
	tol := l.Tol
	if tol == 0 {
		tol = 1e-5
	}
	return Case{
		Name: "layernorm_bwd/" + name, Kernel: "layernorm_bwd", Tol: tol, Tensors: s.ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.DY, c.DX, c.Gamma, c.Mean, c.Rstd = s.v(v, "X"), s.v(v, "DY"), s.v(v, "DX"), s.v(v, "Gamma"), s.v(v, "Mean"), s.v(v, "Rstd")
			c.DGamma, c.DBeta, c.Scratch = s.v(v, "DGamma"), s.v(v, "DBeta"), s.v(v, "Scratch")
			return c
		},
		Ref: func(x [][]float64) {
			refLayerNormBackward(t, s.d(x, "X"), s.d(x, "DY"), s.d(x, "DX"), s.d(x, "Gamma"), s.d(x, "Mean"),
				s.d(x, "Rstd"), s.d(x, "DGamma"), s.d(x, "DBeta"), s.d(x, "Scratch"))
		},
	}
}

func layerNormBwdCases() []Case {
	var cs []Case
	add := func(name string, l lnBwdCfg) { cs = append(cs, layerNormBwdCase(name, l)) }
	add("1x1", lnBwdCfg{Rows: 1, Cols: 1, Std: 1, Eps: 1e-12, DGamma: true, DBeta: true})
	add("5x7", lnBwdCfg{Rows: 5, Cols: 7, Std: 1, Eps: 1e-5, DGamma: true, DBeta: true})
	add("7x1031_dx_only", lnBwdCfg{Rows: 7, Cols: 1031, Mean: 0.5, Std: 2, Eps: 1e-6})
	add("32x65_one_block", lnBwdCfg{Rows: 32, Cols: 65, Std: 1, Eps: 1e-6, DGamma: true, DBeta: true})
	add("33x65_two_blocks_off", lnBwdCfg{Rows: 33, Cols: 65, Mean: -1, Std: 3, Eps: 1e-6, DGamma: true, DBeta: true,
		Off: [9]int{3, 1, 2, 5, 7, 9, 11, 13, 6}, ScratchSlop: 3})
	add("64x768_dgamma_only", lnBwdCfg{Rows: 64, Cols: 768, Std: 1, Eps: 1e-12, DGamma: true})
	add("70x129_dbeta_only_alias", lnBwdCfg{Rows: 70, Cols: 129, Std: 1, Eps: 1e-6, DBeta: true, Alias: true})
	add("577x768_vit", lnBwdCfg{Rows: 577, Cols: 768, Mean: 0.3, Std: 2, Eps: 1e-6, DGamma: true, DBeta: true})
	add("35x768_bert_alias", lnBwdCfg{Rows: 35, Cols: 768, Std: 1, Eps: 1e-12, DGamma: true, DBeta: true, Alias: true})
	add("9x768_mean_offset_100", lnBwdCfg{Rows: 9, Cols: 768, Mean: 100, Std: 1, Eps: 1e-12, DGamma: true, DBeta: true})
	// Zero variance: xhat = 0, DX = Rstd * (g - mean(g)) with Rstd = 1/sqrt(Eps).
	add("4x64_constant_rows", lnBwdCfg{Rows: 4, Cols: 64, Eps: 1e-5, ConstRows: true, DGamma: true, DBeta: true})
	return cs
}

// ---- softmax_bwd ---------------------------------------------------------

type smBwdCfg struct {
	Rows, Cols int
	Scale      float32
	AliasDY    bool // DX is DY
	AliasY     bool // DX is Y
	Off        [3]int
}

func softmaxBwdCase(name string, c smBwdCfg) Case {
	n := c.Rows * c.Cols
	s := newTset()
	// Probabilities of about the right size (rows sum to roughly 1).
	s.add(f32("Y", n, Uniform(0, 2/float64(c.Cols))).at(c.Off[0]))
	s.add(f32("DY", n, Normal(0, 1)).at(c.Off[1]))
	switch {
	case c.AliasDY:
		s.alias("DX", "DY")
	case c.AliasY:
		s.alias("DX", "Y")
	default:
		s.add(f32("DX", n, Const(nan)).at(c.Off[2]).out())
	}
	t := gpu.SoftmaxBackward{Rows: c.Rows, Cols: c.Cols, Scale: c.Scale}
	return Case{
		Name: "softmax_bwd/" + name, Kernel: "softmax_bwd", Tol: 1e-5, Floor: -1, Block: c.Cols, Tensors: s.ts,
		Build: func(v []gpu.View) gpu.Call {
			k := t
			k.Y, k.DY, k.DX = s.v(v, "Y"), s.v(v, "DY"), s.v(v, "DX")
			return k
		},
		Ref: func(x [][]float64) { refSoftmaxBackward(t, s.d(x, "Y"), s.d(x, "DY"), s.d(x, "DX")) },
	}
}

func softmaxBwdCases() []Case {
	var cs []Case
	add := func(name string, c smBwdCfg) { cs = append(cs, softmaxBwdCase(name, c)) }
	add("1x1", smBwdCfg{Rows: 1, Cols: 1})
	add("5x7", smBwdCfg{Rows: 5, Cols: 7})
	add("3x65_scale_off", smBwdCfg{Rows: 3, Cols: 65, Scale: 0.3, Off: [3]int{3, 1, 2}})
	add("577x577_attn_alias_dy", smBwdCfg{Rows: 577, Cols: 577, Scale: 0.125, AliasDY: true})
	add("33x129_alias_y", smBwdCfg{Rows: 33, Cols: 129, AliasY: true})
	add("4x30524_vocab", smBwdCfg{Rows: 4, Cols: 30524, Scale: 1 / 0.7})
	return cs
}

// ---- act_bwd -------------------------------------------------------------

type actBwdCfg struct {
	Act        gpu.Act
	Rows, Cols int
	X          Fill
	FromOutput bool
	DBias      bool
	AliasDY    bool
	Off        [5]int // X, DY, DX, DBias, Scratch
}

func actBwdCase(name string, a actBwdCfg) Case {
	n := a.Rows * a.Cols
	s := newTset()
	if a.Act != gpu.ActNone {
		s.add(f32("X", n, a.X).at(a.Off[0]))
	}
	s.add(f32("DY", n, Normal(0, 1)).at(a.Off[1]))
	if a.AliasDY {
		s.alias("DX", "DY")
	} else {
		s.add(f32("DX", n, Const(nan)).at(a.Off[2]).out())
	}
	if a.DBias {
		s.add(f32("DBias", a.Cols, Normal(0, 1)).at(a.Off[3]).out())
		if m := gpu.ColumnScratchLen(a.Rows, a.Cols); m > 0 {
			s.add(f32("Scratch", int(m), Const(nan)).at(a.Off[4]).out())
		}
	}
	t := gpu.ActBackward{Act: a.Act, Rows: a.Rows, Cols: a.Cols, FromOutput: a.FromOutput}
	// Per element; with DBias per row (of DX, DBias and Scratch): sums of
	// hundreds of terms lose their per-element relative accuracy where they
	// cancel.
	block := 1
	if a.DBias {
		block = a.Cols
	}
	return Case{
		Name: "act_bwd/" + name, Kernel: "act_bwd", Tol: 1e-5, Block: block, Tensors: s.ts,
		Build: func(v []gpu.View) gpu.Call {
			k := t
			k.X, k.DY, k.DX, k.DBias, k.Scratch = s.v(v, "X"), s.v(v, "DY"), s.v(v, "DX"), s.v(v, "DBias"), s.v(v, "Scratch")
			return k
		},
		Ref: func(x [][]float64) {
			refActBackward(t, s.d(x, "X"), s.d(x, "DY"), s.d(x, "DX"), s.d(x, "DBias"), s.d(x, "Scratch"))
		},
	}
}

func actBwdCases() []Case {
	var cs []Case
	add := func(name string, a actBwdCfg) { cs = append(cs, actBwdCase(name, a)) }
	acts := []struct {
		name string
		act  gpu.Act
	}{{"gelu", gpu.ActGELU}, {"tanh", gpu.ActTanh}, {"none", gpu.ActNone}}
	for _, a := range acts {
		add(a.name+"_1x1", actBwdCfg{Act: a.act, Rows: 1, Cols: 1, X: Const(0.5)})
		add(a.name+"_7x33_off", actBwdCfg{Act: a.act, Rows: 7, Cols: 33, X: Normal(0, 2), Off: [5]int{3, 1, 2, 0, 0}})
		add(a.name+"_7x33_dbias", actBwdCfg{Act: a.act, Rows: 7, Cols: 33, X: Normal(0, 2), DBias: true, Off: [5]int{1, 2, 3, 5, 0}})
		add(a.name+"_33x129_dbias_scratch_alias", actBwdCfg{Act: a.act, Rows: 33, Cols: 129, X: Normal(0, 2), DBias: true, AliasDY: true,
			Off: [5]int{0, 3, 0, 1, 7}})
	}
	// Special values and the ranges where the derivatives saturate.
	f, n := lin(-12, 12, 601, nan, inf, ninf, 0, -0.0, 50, -50, 1e4, -1e4, 1e-6, -1e-6)
	add("gelu_range_specials", actBwdCfg{Act: gpu.ActGELU, Rows: 1, Cols: n, X: f})
	add("tanh_range_specials", actBwdCfg{Act: gpu.ActTanh, Rows: 1, Cols: n, X: f})
	add("tanh_from_output", actBwdCfg{Act: gpu.ActTanh, Rows: 9, Cols: 65, X: Uniform(-1, 1), FromOutput: true, DBias: true})
	// BLIP shapes: the ViT MLP (GELU, with its bias gradient) and BERT's
	// pooler (tanh through the Gemm output).
	add("gelu_577x3072_dbias", actBwdCfg{Act: gpu.ActGELU, Rows: 577, Cols: 3072, X: Normal(0, 2), DBias: true})
	add("tanh_from_output_32x768_dbias", actBwdCfg{Act: gpu.ActTanh, Rows: 32, Cols: 768, X: Uniform(-1, 1), FromOutput: true, DBias: true})
	add("gelu_1x100003_flat", actBwdCfg{Act: gpu.ActGELU, Rows: 1, Cols: 100003, X: Normal(0, 3), Off: [5]int{1, 2, 3, 0, 0}})
	return cs
}

// ---- embedding_bwd -------------------------------------------------------

func embeddingBwdCase(name string, n, dim, vocab int, ids Fill, off [3]int) Case {
	t := gpu.EmbeddingBackward{N: n, Dim: dim, Vocab: vocab}
	return Case{
		Name: "embedding_bwd/" + name, Kernel: "embedding_bwd", Tol: 1e-6,
		Tensors: []Tensor{
			f32("DY", n*dim, Normal(0, 1)).at(off[0]),
			i32("Ids", n, ids).at(off[1]),
			f32("DTable", vocab*dim, Normal(0, 1)).at(off[2]).out(),
		},
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.DY, c.Ids, c.DTable = v[0], v[1], v[2]
			return c
		},
		Ref: func(x [][]float64) { refEmbeddingBackward(t, x[0], x[1], x[2]) },
	}
}

func embeddingBwdCases() []Case {
	ids := Ints(0, 1000).With(0, 0).With(1, 999).With(2, -1).With(3, 1000).
		With(4, math.MaxInt32).With(5, math.MinInt32).With(6, -100).With(39, 999).With(20, 0)
	return []Case{
		embeddingBwdCase("1x1x1", 1, 1, 1, Const(0), [3]int{}),
		embeddingBwdCase("n1_out_of_range", 1, 5, 3, Const(3), [3]int{}),
		embeddingBwdCase("n40_dim768_vocab1000_out_of_range", 40, 768, 1000, ids, [3]int{}),
		embeddingBwdCase("n9_dim65_vocab31_off", 9, 65, 31, Ints(-3, 34), [3]int{3, 1, 5}),
		// Many repeats of few ids: the order of the additions matters.
		embeddingBwdCase("n577_dim768_vocab50_repeats", 577, 768, 50, Ints(0, 50), [3]int{}),
		embeddingBwdCase("n300_dim3_vocab2_repeats_off", 300, 3, 2, Ints(-1, 3), [3]int{1, 2, 3}),
		embeddingBwdCase("n70_dim8_vocab30524", 70, 8, 30524, Ints(0, 30524).With(3, 30523).With(4, 30524), [3]int{}),
	}
}

// ---- cross_entropy -------------------------------------------------------

type ceCfg struct {
	Rows, Cols int
	Smoothing  float32
	Scale      float32
	Logits     Fill
	Labels     Fill
	NoLoss     bool
	NoGrad     bool
	Alias      bool   // DLogits is Logits
	Off        [4]int // Logits, Labels, Loss, DLogits
}

func crossEntropyCase(name string, c ceCfg) Case {
	s := newTset()
	n := c.Rows * c.Cols
	s.add(f32("Logits", n, c.Logits).at(c.Off[0]))
	s.add(i32("Labels", c.Rows, c.Labels).at(c.Off[1]))
	if !c.NoLoss {
		s.add(f32("Loss", c.Rows, Const(nan)).at(c.Off[2]).out())
	}
	if !c.NoGrad {
		if c.Alias {
			s.alias("DLogits", "Logits")
		} else {
			s.add(f32("DLogits", n, Const(nan)).at(c.Off[3]).out())
		}
	}
	t := gpu.CrossEntropy{Rows: c.Rows, Cols: c.Cols, Smoothing: c.Smoothing, Scale: c.Scale}
	return Case{
		Name: "cross_entropy/" + name, Kernel: "cross_entropy", Tol: 1e-5, Block: c.Cols, Tensors: s.ts,
		Build: func(v []gpu.View) gpu.Call {
			k := t
			k.Logits, k.Labels, k.Loss, k.DLogits = s.v(v, "Logits"), s.v(v, "Labels"), s.v(v, "Loss"), s.v(v, "DLogits")
			return k
		},
		Ref: func(x [][]float64) {
			refCrossEntropy(t, s.d(x, "Logits"), s.d(x, "Labels"), s.d(x, "Loss"), s.d(x, "DLogits"))
		},
	}
}

func crossEntropyCases() []Case {
	var cs []Case
	add := func(name string, c ceCfg) { cs = append(cs, crossEntropyCase(name, c)) }
	// Labels with PyTorch's ignore_index (-100) and other out-of-range
	// values in some rows.
	lbl := func(cols int, ignored ...int) Fill {
		f := Ints(0, cols)
		for _, r := range ignored {
			f = f.With(r, -100)
		}
		return f
	}
	for _, eps := range []float32{0, 0.1} {
		sfx := fmt.Sprintf("_eps%g", eps)
		add("1x1"+sfx, ceCfg{Rows: 1, Cols: 1, Smoothing: eps, Logits: Normal(0, 1), Labels: Const(0)})
		add("5x7"+sfx, ceCfg{Rows: 5, Cols: 7, Smoothing: eps, Logits: Normal(0, 2), Labels: lbl(7, 3)})
		add("9x129_ignore_off"+sfx, ceCfg{Rows: 9, Cols: 129, Smoothing: eps, Scale: 1.0 / 6, Logits: Normal(0, 3),
			Labels: lbl(129, 0, 4).With(5, 129).With(8, -1), Off: [4]int{3, 1, 2, 5}})
		add("4x30524_vocab"+sfx, ceCfg{Rows: 4, Cols: 30524, Smoothing: eps, Scale: 1.0 / 3, Logits: Normal(0, 3),
			Labels: lbl(30524, 2).With(0, 30523).With(1, 0)})
		add("577x768_alias"+sfx, ceCfg{Rows: 577, Cols: 768, Smoothing: eps, Scale: 1.0 / 500, Logits: Normal(0, 2),
			Labels: lbl(768, 1, 100, 576), Alias: true})
	}
	add("7x65_large_logits_eps0.1", ceCfg{Rows: 7, Cols: 65, Smoothing: 0.1, Logits: Normal(50, 30), Labels: Ints(0, 65)})
	add("7x65_loss_only", ceCfg{Rows: 7, Cols: 65, Logits: Normal(0, 1), Labels: lbl(65, 6), NoGrad: true})
	add("7x65_grad_only_eps0.1", ceCfg{Rows: 7, Cols: 65, Smoothing: 0.1, Logits: Normal(0, 1), Labels: lbl(65, 0), NoLoss: true})
	// Masked classes (-Inf logits) with eps 0 give finite losses.
	ninfs := Normal(0, 1).With(1, ninf).With(7, ninf).With(8, ninf).With(20, ninf)
	add("5x7_neg_inf_logits_eps0", ceCfg{Rows: 5, Cols: 7, Logits: ninfs, Labels: Const(2)})
	add("3x5_all_ignored", ceCfg{Rows: 3, Cols: 5, Smoothing: 0.1, Logits: Normal(0, 1), Labels: Const(-100)})
	return cs
}

// ---- dropout -------------------------------------------------------------

type dropoutCfg struct {
	N     int
	P     float32
	Seed  uint64
	X     Fill
	Alias bool
	Off   [2]int
	// SeedsAt > 0 passes the seed in a Seeds tensor at that offset (and a
	// different, unused Seed field).
	SeedsAt int
}

func dropoutCase(name string, d dropoutCfg) Case {
	ts := []Tensor{f32("X", d.N, d.X).at(d.Off[0])}
	if d.SeedsAt > 0 {
		words := Const(0).With(0, float64(int32(uint32(d.Seed)))).With(1, float64(int32(uint32(d.Seed>>32))))
		ts = append(ts, i32("Seeds", 2, words).at(d.SeedsAt))
	}
	if d.Alias {
		ts[0].Out = true
	} else {
		ts = append(ts, f32("Y", d.N, Const(nan)).at(d.Off[1]).out())
	}
	t := gpu.Dropout{N: d.N, P: d.P, Seed: d.Seed}
	call := t
	if d.SeedsAt > 0 {
		call.Seed = ^d.Seed // must not be used
	}
	return Case{
		// Exact: the mask is bit-identical everywhere and X*KeepScale is
		// one correctly rounded product.
		Name: "dropout/" + name, Kernel: "dropout", Tol: 0, Floor: -1, Block: 1, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := call
			c.X, c.Y = v[0], v[len(v)-1]
			if d.Alias {
				c.Y = v[0]
			}
			if d.SeedsAt > 0 {
				c.Seeds = v[1]
			}
			return c
		},
		Ref: func(x [][]float64) {
			y := x[len(x)-1]
			if d.Alias {
				y = x[0]
			}
			refDropout(t, x[0], y)
		},
	}
}

func dropoutCases() []Case {
	var cs []Case
	add := func(name string, d dropoutCfg) { cs = append(cs, dropoutCase(name, d)) }
	sp, n := lin(-3, 3, 40, nan, inf, ninf, -0.0, 1e-40, 3e38)
	add("p0_identity_specials", dropoutCfg{N: n, P: 0, Seed: 1, X: sp})
	add("p0.1_n1", dropoutCfg{N: 1, P: 0.1, Seed: 7, X: Normal(0, 1)})
	add("p0.1_n5", dropoutCfg{N: 5, P: 0.1, Seed: 7, X: Normal(0, 1)})
	add("p0.1_n1031_off", dropoutCfg{N: 1031, P: 0.1, Seed: 0xDEADBEEF12345678, X: Normal(0, 1), Off: [2]int{3, 1}})
	add("p0.1_577x768_alias", dropoutCfg{N: 577 * 768, P: 0.1, Seed: 42, X: Normal(0, 1), Alias: true})
	add("p0.5_n4099_specials", dropoutCfg{N: 4099, P: 0.5, Seed: 1 << 40, X: Normal(0, 1).With(0, inf).With(1, nan).With(2, ninf)})
	add("p0.9_n1000_seed_max", dropoutCfg{N: 1000, P: 0.9, Seed: math.MaxUint64, X: Normal(0, 1), Off: [2]int{2, 3}})
	add("p0.1_n1031_seedbuf", dropoutCfg{N: 1031, P: 0.1, Seed: 0xDEADBEEF12345678, X: Normal(0, 1), Off: [2]int{3, 1}, SeedsAt: 5})
	add("p0.5_577x768_seedbuf_alias", dropoutCfg{N: 577 * 768, P: 0.5, Seed: 1<<63 | 99, X: Normal(0, 1), Alias: true, SeedsAt: 1})
	return cs
}

// ---- l2norm, l2norm_bwd --------------------------------------------------

// l2Fill is N(0, 1) with row 1 all zero and row 2 tiny (norm below 1e-12)
// when there are enough rows.
func l2Fill(rows, cols int) Fill {
	return Func(func(i int) float64 {
		r := i / cols
		switch {
		case rows > 2 && r == 1:
			return 0
		case rows > 2 && r == 2:
			return 1e-15 * hashNormal(3, i)
		}
		return hashNormal(5, i)
	})
}

func l2NormCase(name string, rows, cols int, eps float32, alias bool, off [2]int) Case {
	ts := []Tensor{f32("X", rows*cols, l2Fill(rows, cols)).at(off[0])}
	if alias {
		ts[0].Out = true
	} else {
		ts = append(ts, f32("Y", rows*cols, Const(nan)).at(off[1]).out())
	}
	t := gpu.L2Normalize{Rows: rows, Cols: cols, Eps: eps}
	return Case{
		Name: "l2norm/" + name, Kernel: "l2norm", Tol: 1e-5, Floor: -1, Block: cols, Tensors: ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y = v[0], v[len(v)-1]
			return c
		},
		Ref: func(x [][]float64) { refL2Normalize(t, x[0], x[len(x)-1]) },
	}
}

func l2NormCases() []Case {
	return []Case{
		l2NormCase("1x1", 1, 1, 1e-12, false, [2]int{}),
		l2NormCase("5x7_zero_tiny_rows", 5, 7, 1e-12, false, [2]int{}),
		l2NormCase("9x256_itc_off", 9, 256, 1e-12, false, [2]int{3, 1}),
		l2NormCase("577x768_alias", 577, 768, 1e-12, true, [2]int{}),
		l2NormCase("4x65_eps_large", 4, 65, 3, false, [2]int{}),
		l2NormCase("3x30524", 3, 30524, 1e-12, false, [2]int{1, 2}),
	}
}

func l2NormBwdCase(name string, rows, cols int, eps float32, alias bool, off [3]int) Case {
	s := newTset()
	s.add(f32("X", rows*cols, l2Fill(rows, cols)).at(off[0]))
	s.add(f32("DY", rows*cols, Normal(0, 1)).at(off[1]))
	if alias {
		s.alias("DX", "DY")
	} else {
		s.add(f32("DX", rows*cols, Const(nan)).at(off[2]).out())
	}
	t := gpu.L2NormalizeBackward{Rows: rows, Cols: cols, Eps: eps}
	return Case{
		// Per row, relative to the row's largest gradient (at least 1e-3:
		// a 1x1 gradient is 0 up to rounding).
		Name: "l2norm_bwd/" + name, Kernel: "l2norm_bwd", Tol: 1e-5, Floor: 1e-3, Block: cols, Tensors: s.ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.DY, c.DX = s.v(v, "X"), s.v(v, "DY"), s.v(v, "DX")
			return c
		},
		Ref: func(x [][]float64) { refL2NormalizeBackward(t, s.d(x, "X"), s.d(x, "DY"), s.d(x, "DX")) },
	}
}

func l2NormBwdCases() []Case {
	return []Case{
		l2NormBwdCase("1x1", 1, 1, 1e-12, false, [3]int{}),
		l2NormBwdCase("5x7_zero_tiny_rows", 5, 7, 1e-12, false, [3]int{}),
		l2NormBwdCase("9x256_itc_off", 9, 256, 1e-12, false, [3]int{3, 1, 2}),
		l2NormBwdCase("577x768_alias", 577, 768, 1e-12, true, [3]int{}),
		l2NormBwdCase("4x65_eps_large", 4, 65, 3, false, [3]int{}),
		l2NormBwdCase("3x30524", 3, 30524, 1e-12, false, [3]int{1, 2, 3}),
	}
}

// ---- adamw ---------------------------------------------------------------

func adamWCase(name string, a gpu.AdamW, off [4]int) Case {
	n := a.N
	return Case{
		Name: "adamw/" + name, Kernel: "adamw", Tol: 1e-5, Block: 1,
		Tensors: []Tensor{
			f32("Param", n, Normal(0, 1)).at(off[0]).out(),
			f32("Grad", n, Normal(0, 1).With(0, 0)).at(off[1]),
			f32("M", n, Normal(0, 0.3)).at(off[2]).out(),
			f32("V", n, Uniform(0, 0.5).With(0, 0)).at(off[3]).out(),
		},
		Build: func(v []gpu.View) gpu.Call {
			c := a
			c.Param, c.Grad, c.M, c.V = v[0], v[1], v[2], v[3]
			return c
		},
		Ref: func(x [][]float64) { refAdamW(a, x[0], x[1], x[2], x[3]) },
	}
}

func adamWCases() []Case {
	step := func(t int, b1, b2 float64) (float32, float32) {
		return float32(1 - math.Pow(b1, float64(t))), float32(1 - math.Pow(b2, float64(t)))
	}
	base := gpu.AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05}
	var cs []Case
	add := func(name string, n, t int, f func(*gpu.AdamW), off [4]int) {
		a := base
		a.N = n
		a.BiasCorrection1, a.BiasCorrection2 = step(t, float64(a.Beta1), float64(a.Beta2))
		if f != nil {
			f(&a)
		}
		cs = append(cs, adamWCase(name, a, off))
	}
	add("n1_step1", 1, 1, nil, [4]int{})
	add("n1031_step1_off", 1031, 1, nil, [4]int{3, 1, 2, 5})
	add("n1031_step1000_lr0.1", 1031, 1000, func(a *gpu.AdamW) { a.LR = 0.1 }, [4]int{})
	add("n1031_step3_gradscale", 1031, 3, func(a *gpu.AdamW) { a.LR, a.GradScale = 0.01, 0.25 }, [4]int{1, 0, 0, 2})
	add("n1031_no_decay_no_correction", 1031, 5, func(a *gpu.AdamW) {
		a.LR, a.WeightDecay, a.BiasCorrection1, a.BiasCorrection2 = 0.01, 0, 1, 1
	}, [4]int{})
	add("n1031_lr0", 1031, 2, func(a *gpu.AdamW) { a.LR = 0 }, [4]int{})
	add("n1031_beta0_eps1", 1031, 7, func(a *gpu.AdamW) { a.LR, a.Beta1, a.Eps = 0.05, 0, 1 }, [4]int{})
	add("vit_577x768", 577*768, 20, func(a *gpu.AdamW) { a.LR = 2e-3 }, [4]int{})
	return cs
}

// ---- colsum --------------------------------------------------------------

func colSumCase(name string, rows, cols int, acc bool, off [3]int, slop int) Case {
	s := newTset()
	s.add(f32("X", rows*cols, Normal(0.5, 2)).at(off[0]))
	yf := Const(nan)
	if acc {
		yf = Normal(0, 1)
	}
	s.add(f32("Y", cols, yf).at(off[1]).out())
	if m := gpu.ColumnScratchLen(rows, cols); m > 0 {
		s.add(f32("Scratch", int(m)+slop, Const(nan)).at(off[2]).out())
	}
	t := gpu.ColumnSum{Rows: rows, Cols: cols, Accumulate: acc}
	return Case{
		Name: "colsum/" + name, Kernel: "colsum", Tol: 1e-5, Tensors: s.ts,
		Build: func(v []gpu.View) gpu.Call {
			c := t
			c.X, c.Y, c.Scratch = s.v(v, "X"), s.v(v, "Y"), s.v(v, "Scratch")
			return c
		},
		Ref: func(x [][]float64) { refColumnSum(t, s.d(x, "X"), s.d(x, "Y"), s.d(x, "Scratch")) },
	}
}

func colSumCases() []Case {
	return []Case{
		colSumCase("1x1", 1, 1, false, [3]int{}, 0),
		colSumCase("5x7_acc", 5, 7, true, [3]int{}, 0),
		colSumCase("32x65_one_block", 32, 65, false, [3]int{}, 0),
		colSumCase("33x65_off", 33, 65, false, [3]int{3, 1, 2}, 0),
		colSumCase("33x65_acc_off", 33, 65, true, [3]int{1, 2, 3}, 2),
		colSumCase("64x5_two_blocks", 64, 5, true, [3]int{}, 0),
		colSumCase("1000x3_many_blocks", 1000, 3, false, [3]int{}, 0),
		colSumCase("577x768_acc", 577, 768, true, [3]int{}, 0),
		colSumCase("577x2304_qkv", 577, 2304, false, [3]int{}, 0),
		colSumCase("40x30524_acc", 40, 30524, true, [3]int{}, 0),
	}
}

// ---- copy2d --------------------------------------------------------------

type copy2DCfg struct {
	gpu.Copy2D // template: shapes, leading dimensions, Accumulate
	DType      gpu.DType
	Off        [2]int
}

func copy2DCase(name string, c copy2DCfg) Case {
	ldx, ldy := c.Lds()
	spanX := (c.Rows-1)*ldx + c.Cols
	spanY := (c.Rows-1)*ldy + c.Cols
	fill := Normal(0, 1)
	if c.DType == gpu.I32 {
		fill = Ints(math.MinInt32, math.MaxInt32)
	}
	// Y starts with data everywhere: the gaps between rows must keep it.
	t := c.Copy2D
	return Case{
		Name: "copy2d/" + name, Kernel: "copy2d", Tol: 1e-7, Floor: -1, Block: 1,
		Tensors: []Tensor{
			{Name: "X", DType: c.DType, Len: spanX, Off: c.Off[0], Fill: fill},
			{Name: "Y", DType: c.DType, Len: spanY, Off: c.Off[1], Fill: fill, Out: true},
		},
		Build: func(v []gpu.View) gpu.Call {
			k := t
			k.X, k.Y = v[0], v[1]
			return k
		},
		Ref: func(x [][]float64) { refCopy2D(t, x[0], x[1]) },
	}
}

func copy2DCases() []Case {
	var cs []Case
	add := func(name string, c copy2DCfg) { cs = append(cs, copy2DCase(name, c)) }
	cp := func(rows, cols, ldx, ldy int, acc bool) gpu.Copy2D {
		return gpu.Copy2D{Rows: rows, Cols: cols, LdX: ldx, LdY: ldy, Accumulate: acc}
	}
	add("1x1", copy2DCfg{Copy2D: cp(1, 1, 0, 0, false), DType: gpu.F32})
	add("1x1_acc", copy2DCfg{Copy2D: cp(1, 1, 0, 0, true), DType: gpu.F32})
	add("7x5_ld9_ld6_off", copy2DCfg{Copy2D: cp(7, 5, 9, 6, false), DType: gpu.F32, Off: [2]int{3, 1}})
	add("7x5_ld9_ld6_acc_off", copy2DCfg{Copy2D: cp(7, 5, 9, 6, true), DType: gpu.F32, Off: [2]int{1, 2}})
	add("i32_13x7_ld8_ld11", copy2DCfg{Copy2D: cp(13, 7, 8, 11, false), DType: gpu.I32, Off: [2]int{2, 3}})
	// Splitting k out of a fused (577, 2304) qkv: X starts at column 768.
	add("qkv_split_k_577x768", copy2DCfg{Copy2D: cp(577, 768, 2304, 0, false), DType: gpu.F32, Off: [2]int{768, 0}})
	// Its gradient added back into the fused layout.
	add("qkv_grad_acc_577x768", copy2DCfg{Copy2D: cp(577, 768, 0, 2304, true), DType: gpu.F32, Off: [2]int{0, 1536}})
	add("3x30524_packed", copy2DCfg{Copy2D: cp(3, 30524, 0, 0, false), DType: gpu.F32, Off: [2]int{1, 0}})
	add("129x65_ld67_acc", copy2DCfg{Copy2D: cp(129, 65, 67, 0, true), DType: gpu.F32})
	return cs
}

// ---- error cases ---------------------------------------------------------

func trainErrorCases() []ErrorCase {
	ln := func(e *Env) gpu.LayerNormBackward { // valid 40x4 with parameter gradients
		return gpu.LayerNormBackward{X: e.F32(160), DY: e.F32(160), DX: e.F32(160), Gamma: e.F32(4), Mean: e.F32(40),
			Rstd: e.F32(40), DGamma: e.F32(4), DBeta: e.F32(4), Scratch: e.F32(16), Rows: 40, Cols: 4}
	}
	ce := func(e *Env) gpu.CrossEntropy {
		return gpu.CrossEntropy{Logits: e.F32(12), Labels: e.I32(3), Loss: e.F32(3), DLogits: e.F32(12), Rows: 3, Cols: 4}
	}
	adam := func(e *Env) gpu.AdamW {
		return gpu.AdamW{Param: e.F32(8), Grad: e.F32(8), M: e.F32(8), V: e.F32(8), N: 8, LR: 1e-3, Beta1: 0.9, Beta2: 0.999,
			Eps: 1e-8, BiasCorrection1: 0.1, BiasCorrection2: 0.001}
	}
	return []ErrorCase{
		{"scratch_missing", "layernorm_bwd", func(e *Env) gpu.Call { c := ln(e); c.Scratch = gpu.View{}; return c }},
		{"scratch_short", "layernorm_bwd", func(e *Env) gpu.Call { c := ln(e); c.Scratch = e.F32(15); return c }},
		{"rstd_short", "layernorm_bwd", func(e *Env) gpu.Call { c := ln(e); c.Rstd = e.F32(39); return c }},
		{"gamma_missing", "layernorm_bwd", func(e *Env) gpu.Call { c := ln(e); c.Gamma = gpu.View{}; return c }},
		{"dbeta_foreign", "layernorm_bwd", func(e *Env) gpu.Call { c := ln(e); c.DBeta = e.Foreign(gpu.F32, 4); return c }},

		{"dx_too_small", "softmax_bwd", func(e *Env) gpu.Call {
			return gpu.SoftmaxBackward{Y: e.F32(20), DY: e.F32(20), DX: e.F32(19), Rows: 5, Cols: 4}
		}},
		{"cols_zero", "softmax_bwd", func(e *Env) gpu.Call { return gpu.SoftmaxBackward{Y: e.F32(20), DY: e.F32(20), DX: e.F32(20), Rows: 5} }},

		{"gelu_from_output", "act_bwd", func(e *Env) gpu.Call {
			return gpu.ActBackward{Act: gpu.ActGELU, FromOutput: true, X: e.F32(6), DY: e.F32(6), DX: e.F32(6), Rows: 2, Cols: 3}
		}},
		{"bad_act", "act_bwd", func(e *Env) gpu.Call {
			return gpu.ActBackward{Act: 7, X: e.F32(6), DY: e.F32(6), DX: e.F32(6), Rows: 2, Cols: 3}
		}},
		{"x_missing", "act_bwd", func(e *Env) gpu.Call {
			return gpu.ActBackward{Act: gpu.ActTanh, DY: e.F32(6), DX: e.F32(6), Rows: 2, Cols: 3}
		}},
		{"dbias_without_scratch", "act_bwd", func(e *Env) gpu.Call {
			return gpu.ActBackward{Act: gpu.ActTanh, X: e.F32(99), DY: e.F32(99), DX: e.F32(99), DBias: e.F32(3), Rows: 33, Cols: 3}
		}},

		{"ids_f32", "embedding_bwd", func(e *Env) gpu.Call {
			return gpu.EmbeddingBackward{DY: e.F32(12), Ids: e.F32(3), DTable: e.F32(20), N: 3, Dim: 4, Vocab: 5}
		}},
		{"table_too_small", "embedding_bwd", func(e *Env) gpu.Call {
			return gpu.EmbeddingBackward{DY: e.F32(12), Ids: e.I32(3), DTable: e.F32(19), N: 3, Dim: 4, Vocab: 5}
		}},
		{"all_foreign", "embedding_bwd", func(e *Env) gpu.Call {
			return gpu.EmbeddingBackward{DY: e.Foreign(gpu.F32, 12), Ids: e.Foreign(gpu.I32, 3), DTable: e.Foreign(gpu.F32, 20), N: 3, Dim: 4, Vocab: 5}
		}},

		{"no_outputs", "cross_entropy", func(e *Env) gpu.Call { c := ce(e); c.Loss, c.DLogits = gpu.View{}, gpu.View{}; return c }},
		{"smoothing_one", "cross_entropy", func(e *Env) gpu.Call { c := ce(e); c.Smoothing = 1; return c }},
		{"labels_f32", "cross_entropy", func(e *Env) gpu.Call { c := ce(e); c.Labels = e.F32(3); return c }},
		{"dlogits_short", "cross_entropy", func(e *Env) gpu.Call { c := ce(e); c.DLogits = e.F32(11); return c }},

		{"p_one", "dropout", func(e *Env) gpu.Call { return gpu.Dropout{X: e.F32(4), Y: e.F32(4), N: 4, P: 1} }},
		{"p_negative", "dropout", func(e *Env) gpu.Call { return gpu.Dropout{X: e.F32(4), Y: e.F32(4), N: 4, P: -0.1} }},
		{"y_outside", "dropout", func(e *Env) gpu.Call { return gpu.Dropout{X: e.F32(4), Y: e.Outside(4), N: 4, P: 0.1} }},
		{"seeds_f32", "dropout", func(e *Env) gpu.Call { return gpu.Dropout{X: e.F32(4), Y: e.F32(4), N: 4, P: 0.1, Seeds: e.F32(2)} }},
		{"seeds_short", "dropout", func(e *Env) gpu.Call { return gpu.Dropout{X: e.F32(4), Y: e.F32(4), N: 4, P: 0.1, Seeds: e.I32(1)} }},

		{"eps_zero", "l2norm", func(e *Env) gpu.Call { return gpu.L2Normalize{X: e.F32(6), Y: e.F32(6), Rows: 2, Cols: 3} }},
		{"y_short", "l2norm", func(e *Env) gpu.Call { return gpu.L2Normalize{X: e.F32(6), Y: e.F32(5), Rows: 2, Cols: 3, Eps: 1e-12} }},
		{"eps_zero", "l2norm_bwd", func(e *Env) gpu.Call {
			return gpu.L2NormalizeBackward{X: e.F32(6), DY: e.F32(6), DX: e.F32(6), Rows: 2, Cols: 3}
		}},
		{"dy_foreign", "l2norm_bwd", func(e *Env) gpu.Call {
			return gpu.L2NormalizeBackward{X: e.F32(6), DY: e.Foreign(gpu.F32, 6), DX: e.F32(6), Rows: 2, Cols: 3, Eps: 1e-12}
		}},

		{"bias_correction_zero", "adamw", func(e *Env) gpu.Call { c := adam(e); c.BiasCorrection2 = 0; return c }},
		{"beta1_one", "adamw", func(e *Env) gpu.Call { c := adam(e); c.Beta1 = 1; return c }},
		{"eps_zero", "adamw", func(e *Env) gpu.Call { c := adam(e); c.Eps = 0; return c }},
		{"v_short", "adamw", func(e *Env) gpu.Call { c := adam(e); c.V = e.F32(7); return c }},
		{"grad_i32", "adamw", func(e *Env) gpu.Call { c := adam(e); c.Grad = e.I32(8); return c }},

		{"scratch_missing", "colsum", func(e *Env) gpu.Call { return gpu.ColumnSum{X: e.F32(99), Y: e.F32(3), Rows: 33, Cols: 3} }},
		{"y_short", "colsum", func(e *Env) gpu.Call { return gpu.ColumnSum{X: e.F32(12), Y: e.F32(2), Rows: 4, Cols: 3} }},

		{"ld_too_small", "copy2d", func(e *Env) gpu.Call { return gpu.Copy2D{X: e.F32(12), Y: e.F32(12), Rows: 3, Cols: 4, LdX: 3} }},
		{"y_span_short", "copy2d", func(e *Env) gpu.Call {
			return gpu.Copy2D{X: e.F32(12), Y: e.F32(13), Rows: 3, Cols: 4, LdY: 5}
		}},
		{"i32_accumulate", "copy2d", func(e *Env) gpu.Call {
			return gpu.Copy2D{X: e.I32(12), Y: e.I32(12), Rows: 3, Cols: 4, Accumulate: true}
		}},
		{"mixed_dtypes", "copy2d", func(e *Env) gpu.Call { return gpu.Copy2D{X: e.F32(12), Y: e.I32(12), Rows: 3, Cols: 4} }},
	}
}
