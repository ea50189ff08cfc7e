package graph

import (
	"math"

	"blip/gpu"
)

// The gradient-check table: every differentiable op family at least once
// (the coverage test holds us to it), with the variants that take different
// code paths (broadcasts, transposes, masks, fused and unfused attention,
// shared operands), and a few compositions whose gradients pass through
// aliased and overwritten buffers.

type gradCase struct {
	op string // op family covered; "" for compositions
	GradCheck
}

// f is a differentiable f32 input with random values.
func f(name string, shape ...int) GradCheckInput {
	return GradCheckInput{Name: name, Shape: shape, Diff: true}
}

// fixed is a non-differentiable f32 input with the given values.
func fixed(name string, data []float64, shape ...int) GradCheckInput {
	return GradCheckInput{Name: name, Shape: shape, Data: data}
}

// ints is an i32 input.
func ints(name string, data []float64, shape ...int) GradCheckInput {
	return GradCheckInput{Name: name, Shape: shape, DType: gpu.I32, Data: data}
}

func linearCase(name string, act gpu.Act, bias bool, actRef func(float64) float64) gradCase {
	ins := []GradCheckInput{f("x", 2, 3, 4), f("w", 5, 4)}
	if bias {
		ins = append(ins, f("b", 5))
	}
	return gradCase{"linear", GradCheck{Name: name, Inputs: ins,
		Build: func(g *Graph, in []*Tensor) *Tensor {
			var b *Tensor
			if bias {
				b = in[2]
			}
			return g.LinearAct(in[0], in[1], b, act)
		},
		Ref: func(in [][]float64) []float64 {
			var b []float64
			if bias {
				b = in[2]
			}
			return refLinear(in[0], in[1], b, 4, 5, actRef)
		}}}
}

// matmulCase: a and b shapes as stored; sa/sb the batch strides of the
// reference (0: shared).
func matmulCase(name string, as, bs Shape, ta, tb bool, batch, m, n, k int) gradCase {
	sa, sb := m*k, k*n
	if as.Rank() == 2 && batch > 1 {
		sa = 0
	}
	if bs.Rank() == 2 && batch > 1 {
		sb = 0
	}
	return gradCase{"matmul", GradCheck{Name: name, Inputs: []GradCheckInput{f("a", as...), f("b", bs...)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.MatMul(in[0], in[1], ta, tb) },
		Ref: func(in [][]float64) []float64 {
			return refMatMul(in[0], in[1], batch, m, n, k, ta, tb, sa, sb)
		}}}
}

// awayFromZero is a differentiable input with values of magnitude in
// [0.5, 2) (divisors).
func awayFromZero(name string, shape ...int) GradCheckInput {
	d := make([]float64, Shape(shape).Numel())
	for i := range d {
		v := 0.5 + 1.5*math.Abs(math.Sin(float64(3*i+1)))
		if i%3 == 1 {
			v = -v
		}
		d[i] = float64(float32(v))
	}
	return GradCheckInput{Name: name, Shape: shape, Data: d, Diff: true}
}

func binCase(name, op string, as, bs Shape, fn func(x, y float64) float64) gradCase {
	b := f("b", bs...)
	if op == "div" {
		b = awayFromZero("b", bs...)
	}
	return gradCase{op, GradCheck{Name: name, Inputs: []GradCheckInput{f("a", as...), b},
		Build: func(g *Graph, in []*Tensor) *Tensor {
			switch op {
			case "add":
				return g.Add(in[0], in[1])
			case "sub":
				return g.Sub(in[0], in[1])
			case "div":
				return g.Div(in[0], in[1])
			}
			return g.Mul(in[0], in[1])
		},
		Ref: func(in [][]float64) []float64 {
			if len(in[1]) > len(in[0]) {
				return refBroadcast(in[1], in[0], func(x, y float64) float64 { return fn(y, x) })
			}
			return refBroadcast(in[0], in[1], fn)
		}}}
}

// packedQKVCase is attention over the three column blocks of one
// (B, T, 3*H*D) input (a fused qkv projection's output): blocks[i] is the
// block q (i = 0), k (1) or v (2) is. The kernels read the input in place
// and write its gradient whole (TestAttentionInPlaceQKV checks that no
// copy runs).
func packedQKVCase(name string, blocks [3]int, masked bool) gradCase {
	const b, h, t, d = 2, 2, 3, 2
	hd := h * d
	ins := []GradCheckInput{f("qkv", b, t, 3*hd)}
	mask := []float64{0, 0, math.Inf(-1), -1e4, 0, 0}
	if masked {
		ins = append(ins, fixed("mask", mask, b, t))
	}
	block := func(x []float64, i int) []float64 {
		out := make([]float64, 0, b*t*hd)
		for r := range b * t {
			out = append(out, x[r*3*hd+blocks[i]*hd:r*3*hd+(blocks[i]+1)*hd]...)
		}
		return out
	}
	return gradCase{"attention", GradCheck{Name: name, Inputs: ins,
		Build: func(g *Graph, in []*Tensor) *Tensor {
			sl := func(i int) *Tensor { return g.Slice(in[0], 2, blocks[i]*hd, (blocks[i]+1)*hd) }
			o := AttentionOpts{Heads: h}
			if masked {
				o.Mask = in[1]
			}
			return g.Attention(sl(0), sl(1), sl(2), o)
		},
		Ref: func(in [][]float64) []float64 {
			var m []float64
			if masked {
				m = in[1]
			}
			return refAttention(block(in[0], 0), block(in[0], 1), block(in[0], 2), m, b, h, t, t, d, false, 1/math.Sqrt(d))
		}}}
}

func attentionCase(name string, unfused, causal, masked bool, b, h, tq, tk, d int) gradCase {
	ins := []GradCheckInput{f("q", b, tq, h*d), f("k", b, tk, h*d), f("v", b, tk, h*d)}
	var mask []float64
	if masked {
		mask = make([]float64, b*tk)
		mask[tk-1] = math.Inf(-1) // batch 0: last key removed
		if b > 1 {
			mask[tk] = -1e4 // batch 1: first key (almost) removed, HF style
		}
		ins = append(ins, fixed("mask", mask, b, tk))
	}
	scale := 1 / math.Sqrt(float64(d))
	return gradCase{"attention", GradCheck{Name: name, Inputs: ins,
		Build: func(g *Graph, in []*Tensor) *Tensor {
			o := AttentionOpts{Heads: h, Causal: causal, Unfused: unfused}
			if masked {
				o.Mask = in[3]
			}
			return g.Attention(in[0], in[1], in[2], o)
		},
		Ref: func(in [][]float64) []float64 {
			var m []float64
			if masked {
				m = in[3]
			}
			return refAttention(in[0], in[1], in[2], m, b, h, tq, tk, d, causal, scale)
		}}}
}

var gradCases = []gradCase{
	linearCase("linear", gpu.ActNone, true, nil),
	linearCase("linear/nobias", gpu.ActNone, false, nil),
	linearCase("linear/gelu", gpu.ActGELU, true, refGELU),
	linearCase("linear/tanh", gpu.ActTanh, true, math.Tanh),
	{"linear", GradCheck{Name: "linear/rows>ColumnBlock", Inputs: []GradCheckInput{f("x", 40, 3), f("w", 2, 3), f("b", 2)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.LinearAct(in[0], in[1], in[2], gpu.ActGELU) },
		Ref:   func(in [][]float64) []float64 { return refLinear(in[0], in[1], in[2], 3, 2, refGELU) }}},

	matmulCase("matmul", Shape{2, 3, 4}, Shape{2, 4, 5}, false, false, 2, 3, 5, 4),
	matmulCase("matmul/transA", Shape{2, 4, 3}, Shape{2, 4, 5}, true, false, 2, 3, 5, 4),
	matmulCase("matmul/transB", Shape{2, 3, 4}, Shape{2, 5, 4}, false, true, 2, 3, 5, 4),
	matmulCase("matmul/transAB", Shape{2, 4, 3}, Shape{2, 5, 4}, true, true, 2, 3, 5, 4),
	matmulCase("matmul/2d", Shape{3, 4}, Shape{5, 4}, false, true, 1, 3, 5, 4),
	matmulCase("matmul/shared-b", Shape{2, 3, 4}, Shape{4, 5}, false, false, 2, 3, 5, 4),
	matmulCase("matmul/shared-bT", Shape{2, 3, 4}, Shape{5, 4}, false, true, 2, 3, 5, 4),
	matmulCase("matmul/shared-b-transA", Shape{2, 4, 3}, Shape{4, 5}, true, false, 2, 3, 5, 4),
	matmulCase("matmul/shared-a", Shape{3, 4}, Shape{2, 4, 5}, false, false, 2, 3, 5, 4),
	matmulCase("matmul/shared-aT", Shape{4, 3}, Shape{2, 5, 4}, true, true, 2, 3, 5, 4),

	binCase("add", "add", Shape{2, 3, 4}, Shape{2, 3, 4}, func(x, y float64) float64 { return x + y }),
	binCase("add/row", "add", Shape{2, 3, 4}, Shape{4}, func(x, y float64) float64 { return x + y }),
	binCase("add/pos", "add", Shape{2, 3, 4}, Shape{1, 3, 4}, func(x, y float64) float64 { return x + y }),
	binCase("add/scalar-first", "add", Shape{}, Shape{3, 40}, func(x, y float64) float64 { return x + y }),
	{"add", GradCheck{Name: "add/self", Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Add(in[0], in[0]) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], func(x float64) float64 { return 2 * x }) }}},
	binCase("sub", "sub", Shape{2, 3, 4}, Shape{2, 3, 4}, func(x, y float64) float64 { return x - y }),
	binCase("sub/row", "sub", Shape{40, 4}, Shape{4}, func(x, y float64) float64 { return x - y }),
	binCase("sub/scalar", "sub", Shape{3, 4}, Shape{}, func(x, y float64) float64 { return x - y }),
	{"sub", GradCheck{Name: "sub/self", Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Sub(g.Scale(in[0], 3), in[0]) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], func(x float64) float64 { return 2 * x }) }}},
	binCase("div", "div", Shape{2, 3, 4}, Shape{2, 3, 4}, func(x, y float64) float64 { return x / y }),
	binCase("div/row", "div", Shape{40, 4}, Shape{4}, func(x, y float64) float64 { return x / y }),
	binCase("div/temperature", "div", Shape{3, 3}, Shape{}, func(x, y float64) float64 { return x / y }),
	{"div", GradCheck{Name: "div/self", Inputs: []GradCheckInput{awayFromZero("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Div(g.Scale(in[0], 3), in[0]) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], func(x float64) float64 { return 3 }) }}},
	binCase("mul", "mul", Shape{2, 3, 4}, Shape{2, 3, 4}, func(x, y float64) float64 { return x * y }),
	binCase("mul/row", "mul", Shape{40, 4}, Shape{4}, func(x, y float64) float64 { return x * y }),
	binCase("mul/scalar", "mul", Shape{3, 4}, Shape{}, func(x, y float64) float64 { return x * y }),
	{"mul", GradCheck{Name: "mul/self", Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Mul(in[0], in[0]) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], func(x float64) float64 { return x * x }) }}},
	{"scale", GradCheck{Name: "scale", Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Scale(in[0], -0.75) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], func(x float64) float64 { return -0.75 * x }) }}},

	{"gelu", GradCheck{Name: "gelu", Inputs: []GradCheckInput{f("x", 5, 7)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.GELU(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], refGELU) }}},
	{"tanh", GradCheck{Name: "tanh", Inputs: []GradCheckInput{f("x", 5, 7)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Tanh(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refMap(in[0], math.Tanh) }}},

	{"layernorm", GradCheck{Name: "layernorm", Inputs: []GradCheckInput{f("x", 2, 3, 8), f("gamma", 8), f("beta", 8)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.LayerNorm(in[0], in[1], in[2], 1e-5) },
		Ref:   func(in [][]float64) []float64 { return refLayerNorm(in[0], in[1], in[2], 8, 1e-5) }}},
	{"layernorm", GradCheck{Name: "layernorm/rows>ColumnBlock", Inputs: []GradCheckInput{f("x", 5, 9, 6), f("gamma", 6), f("beta", 6)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.LayerNorm(in[0], in[1], in[2], 1e-12) },
		Ref:   func(in [][]float64) []float64 { return refLayerNorm(in[0], in[1], in[2], 6, 1e-12) }}},

	{"softmax", GradCheck{Name: "softmax", Inputs: []GradCheckInput{f("x", 4, 6)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Softmax(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refSoftmax(in[0], nil, 6, 1, 1) }}},
	{"softmax", GradCheck{Name: "softmax/masked-scaled",
		Inputs: []GradCheckInput{f("x", 2, 3, 5), fixed("mask", []float64{0, 0, math.Inf(-1), 0, -1e4, 0, -2, 0, 0, 0}, 2, 5)},
		Build:  func(g *Graph, in []*Tensor) *Tensor { return g.SoftmaxMasked(in[0], in[1], 0.5) },
		Ref:    func(in [][]float64) []float64 { return refSoftmax(in[0], in[1], 5, 3, 0.5) }}},

	{"embedding", GradCheck{Name: "embedding",
		Inputs: []GradCheckInput{f("table", 7, 5), ints("ids", []float64{3, 0, 3, 6, -100, 2, 7, 3}, 2, 4)},
		Build:  func(g *Graph, in []*Tensor) *Tensor { return g.Embedding(in[0], in[1]) },
		Ref:    func(in [][]float64) []float64 { return refEmbedding(in[0], in[1], 5) }}},

	attentionCase("attention", false, false, false, 2, 2, 3, 4, 4),
	attentionCase("attention/masked", false, false, true, 2, 2, 3, 4, 4),
	attentionCase("attention/causal", false, true, true, 2, 2, 4, 4, 3),
	attentionCase("attention/causal-tq<tk", false, true, false, 1, 3, 2, 5, 2),
	attentionCase("attention/unfused", true, false, false, 2, 2, 3, 4, 4),
	attentionCase("attention/unfused-masked", true, false, true, 2, 2, 3, 4, 4),
	attentionCase("attention/unfused-causal", true, true, true, 2, 2, 4, 4, 3),
	{"attention", GradCheck{Name: "attention/qkv-shared", Inputs: []GradCheckInput{f("x", 2, 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Attention(in[0], in[0], in[0], AttentionOpts{Heads: 2}) },
		Ref: func(in [][]float64) []float64 {
			return refAttention(in[0], in[0], in[0], nil, 2, 2, 3, 3, 2, false, 1/math.Sqrt2)
		}}},
	packedQKVCase("attention/packed-qkv", [3]int{0, 1, 2}, false),
	packedQKVCase("attention/packed-qkv-permuted-masked", [3]int{2, 0, 1}, true),
	{"attention", GradCheck{Name: "attention/unfused-qkv-shared", Inputs: []GradCheckInput{f("x", 2, 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor {
			return g.Attention(in[0], in[0], in[0], AttentionOpts{Heads: 2, Unfused: true})
		},
		Ref: func(in [][]float64) []float64 {
			return refAttention(in[0], in[0], in[0], nil, 2, 2, 3, 3, 2, false, 1/math.Sqrt2)
		}}},

	{"cross_entropy", GradCheck{Name: "cross_entropy",
		Inputs: []GradCheckInput{f("logits", 5, 7), ints("labels", []float64{3, -100, 0, 6, 3}, 5)},
		Build:  func(g *Graph, in []*Tensor) *Tensor { return g.CrossEntropy(in[0], in[1], 0) },
		Ref:    func(in [][]float64) []float64 { return refCrossEntropy(in[0], in[1], 7, 0) }}},
	{"cross_entropy", GradCheck{Name: "cross_entropy/smoothing",
		Inputs: []GradCheckInput{f("logits", 2, 3, 7), ints("labels", []float64{3, -100, 0, 6, -100, 1}, 2, 3)},
		Build:  func(g *Graph, in []*Tensor) *Tensor { return g.CrossEntropy(in[0], in[1], 0.1) },
		Ref:    func(in [][]float64) []float64 { return refCrossEntropy(in[0], in[1], 7, 0.1) }}},

	{"soft_cross_entropy", GradCheck{Name: "soft_cross_entropy",
		Inputs: []GradCheckInput{f("logits", 4, 5),
			fixed("targets", []float64{1, 0, 0, 0, 0, 0.2, 0.3, 0.5, 0, 0, 0.1, 0.1, 0.1, 0.1, 0.6, 0, 0, 0, 0.6, 0.4}, 4, 5)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.SoftCrossEntropy(in[0], in[1]) },
		Ref:   func(in [][]float64) []float64 { return refSoftCrossEntropy(in[0], in[1], 5) }}},
	{"soft_cross_entropy", GradCheck{Name: "soft_cross_entropy/unnormalised",
		Inputs: []GradCheckInput{f("logits", 2, 3, 6), {Name: "t", Shape: Shape{2, 3, 6}}}, // random, no gradient
		Build:  func(g *Graph, in []*Tensor) *Tensor { return g.SoftCrossEntropy(in[0], in[1]) },
		Ref:    func(in [][]float64) []float64 { return refSoftCrossEntropy(in[0], in[1], 6) }}},

	{"dropout", GradCheck{Name: "dropout", Inputs: []GradCheckInput{f("x", 4, 50)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Dropout(in[0], 0.3) },
		// The mask is the kernel's: read it off the output (y = x * mask),
		// which checks that the backward pass uses the forward's mask.
		RefFromOutput: func(in, in0 [][]float64, y0 []float32) []float64 {
			y := make([]float64, len(in[0]))
			for i, x := range in[0] {
				y[i] = x * (float64(y0[i]) / in0[0][i])
			}
			return y
		}}},

	{"l2normalize", GradCheck{Name: "l2normalize", Inputs: []GradCheckInput{f("x", 3, 6)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.L2Normalize(in[0], 0) },
		Ref:   func(in [][]float64) []float64 { return refL2Normalize(in[0], 6, 1e-12) }}},

	{"reduce", GradCheck{Name: "reduce/sum", Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Sum(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refRowReduce(in[0], 12, false) }}},
	{"reduce", GradCheck{Name: "reduce/mean", Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Mean(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refRowReduce(in[0], 12, true) }}},
	{"reduce", GradCheck{Name: "reduce/sum-last", Inputs: []GradCheckInput{f("x", 2, 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.SumLast(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refRowReduce(in[0], 4, false) }}},
	{"reduce", GradCheck{Name: "reduce/mean-last", Inputs: []GradCheckInput{f("x", 2, 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.MeanLast(in[0]) },
		Ref:   func(in [][]float64) []float64 { return refRowReduce(in[0], 4, true) }}},

	{"reshape", GradCheck{Name: "reshape", Inputs: []GradCheckInput{f("x", 2, 6)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Reshape(in[0], 3, -1) },
		Ref:   func(in [][]float64) []float64 { return in[0] }}},
	{"slice", GradCheck{Name: "slice/rows", Inputs: []GradCheckInput{f("x", 5, 3)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Slice(in[0], 0, 1, 4) },
		Ref:   func(in [][]float64) []float64 { return refSlice(in[0], Shape{5, 3}, 0, 1, 4) }}},
	{"slice", GradCheck{Name: "slice/columns", Inputs: []GradCheckInput{f("x", 3, 8)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Slice(in[0], -1, 2, 5) },
		Ref:   func(in [][]float64) []float64 { return refSlice(in[0], Shape{3, 8}, 1, 2, 5) }}},
	{"slice", GradCheck{Name: "slice/cls-token", Inputs: []GradCheckInput{f("x", 2, 4, 3)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Reshape(g.Slice(in[0], 1, 0, 1), 2, 3) },
		Ref:   func(in [][]float64) []float64 { return refSlice(in[0], Shape{2, 4, 3}, 1, 0, 1) }}},
	{"concat", GradCheck{Name: "concat/rows", Inputs: []GradCheckInput{f("a", 2, 3), f("b", 4, 3)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Concat(0, in[0], in[1]) },
		Ref:   func(in [][]float64) []float64 { return refConcat(in, 1, []int{2, 4}, 3) }}},
	{"concat", GradCheck{Name: "concat/tokens", Inputs: []GradCheckInput{f("cls", 2, 1, 3), f("patches", 2, 4, 3), f("extra", 2, 2, 3)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Concat(1, in[0], in[1], in[2]) },
		Ref:   func(in [][]float64) []float64 { return refConcat(in, 2, []int{1, 4, 2}, 3) }}},
	{"concat", GradCheck{Name: "concat/self", Inputs: []GradCheckInput{f("x", 2, 3)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Concat(-1, in[0], in[0]) },
		Ref: func(in [][]float64) []float64 {
			return refConcat([][]float64{in[0], in[0]}, 2, []int{3, 3}, 1)
		}}},
	{"permute", GradCheck{Name: "permute", Inputs: []GradCheckInput{f("x", 2, 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Permute(in[0], 2, 0, 1) },
		Ref:   func(in [][]float64) []float64 { return refPermute(in[0], Shape{2, 3, 4}, []int{2, 0, 1}) }}},
	{"permute", GradCheck{Name: "permute/transpose-heads", Inputs: []GradCheckInput{f("x", 2, 3, 2, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor { return g.Transpose(in[0], 1, 2) },
		Ref:   func(in [][]float64) []float64 { return refPermute(in[0], Shape{2, 3, 2, 4}, []int{0, 2, 1, 3}) }}},

	// Compositions: a residual pre-LN MLP (aliased residual gradients,
	// in-place overwrites), and one tensor feeding several ops.
	{"", GradCheck{Name: "compose/residual-mlp",
		Inputs: []GradCheckInput{f("x", 2, 3, 4), f("g", 4), f("b", 4), f("w1", 6, 4), f("b1", 6), f("w2", 4, 6)},
		Build: func(g *Graph, in []*Tensor) *Tensor {
			h := g.LayerNorm(in[0], in[1], in[2], 1e-5)
			h = g.Linear(g.GELU(g.Linear(h, in[3], in[4])), in[5], nil)
			return g.Tanh(g.Add(in[0], h))
		},
		Ref: func(in [][]float64) []float64 {
			h := refLayerNorm(in[0], in[1], in[2], 4, 1e-5)
			h = refLinear(refMap(refLinear(h, in[3], in[4], 4, 6, nil), refGELU), in[5], nil, 6, 4, nil)
			return refMap(refBroadcast(in[0], h, func(x, y float64) float64 { return x + y }), math.Tanh)
		}}},
	{"", GradCheck{Name: "compose/fan-out",
		Inputs: []GradCheckInput{f("x", 3, 4)},
		Build: func(g *Graph, in []*Tensor) *Tensor {
			r := g.Reshape(in[0], 4, 3)
			s := g.Softmax(in[0])
			return g.Add(g.Mul(g.Reshape(r, 3, 4), s), g.Scale(in[0], 2))
		},
		Ref: func(in [][]float64) []float64 {
			s := refSoftmax(in[0], nil, 4, 1, 1)
			y := make([]float64, 12)
			for i := range y {
				y[i] = in[0][i]*s[i] + 2*in[0][i]
			}
			return y
		}}},
}
