package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// TestAttentionInPlaceQKV checks attention over the column blocks of one
// fused qkv tensor (the ViT's) on both backends: the inference plan and
// the training plan copy no slice (no Copy2D: the kernels read the tensor,
// and write its gradient, in place), and the output and the gradient of
// the qkv tensor match the unfused path's (which copies the slices) to
// fp32 accuracy.
func TestAttentionInPlaceQKV(t *testing.T) {
	backends := map[string]gpu.Backend{"cpu": cpu.New()}
	defer backends["cpu"].Close()
	backends["vulkan"] = openVulkan(t)
	for name, be := range backends {
		t.Run(name, func(t *testing.T) { testAttentionInPlaceQKV(t, be) })
	}
}

func testAttentionInPlaceQKV(t *testing.T, be gpu.Backend) {
	const b, tok, h, d = 2, 37, 3, 16
	hd := h * d
	r := rand.New(rand.NewPCG(3, 5))
	xv := make([]float32, b*tok*3*hd)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	wv := make([]float32, b*tok*hd) // dL/dO
	for i := range wv {
		wv[i] = float32(r.NormFloat64())
	}
	run := func(unfused, training bool) (out, grad []float32, copies int) {
		t.Helper()
		g := New()
		x := g.Input("qkv", gpu.F32, b, tok, 3*hd)
		w := g.Input("w", gpu.F32, b, tok, hd)
		// v, q, k in that order along the columns.
		o := g.Attention(g.Slice(x, 2, hd, 2*hd), g.Slice(x, 2, 2*hd, 3*hd), g.Slice(x, 2, 0, hd), AttentionOpts{Heads: h, Unfused: unfused})
		cfg := Config{Outputs: []*Tensor{o}}
		if training {
			cfg.Loss, cfg.GradInputs = g.Sum(g.Mul(o, w)), []*Tensor{x}
		}
		p, err := g.Compile(be, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, c := range p.calls {
			if _, ok := c.(gpu.Copy2D); ok {
				copies++
			}
		}
		if err := p.WriteF32(x, xv); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteF32(w, wv); err != nil {
			t.Fatal(err)
		}
		if err := p.Run(); err != nil {
			t.Fatal(err)
		}
		out = make([]float32, o.Numel())
		if err := p.ReadF32(o, out); err != nil {
			t.Fatal(err)
		}
		if training {
			grad = make([]float32, x.Numel())
			if err := p.ReadF32(p.Grad(x), grad); err != nil {
				t.Fatal(err)
			}
		}
		return out, grad, copies
	}
	maxDiff := func(a, b []float32) float64 {
		var m float64
		for i := range a {
			m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
		}
		return m
	}
	refOut, refGrad, refCopies := run(true, true)
	if refCopies == 0 {
		t.Fatal("the unfused reference copies no slice: the check below would not tell")
	}
	for _, training := range []bool{false, true} {
		out, grad, copies := run(false, training)
		if copies != 0 {
			t.Errorf("training %v: %d slice copies, want none", training, copies)
		}
		if dd := maxDiff(out, refOut); dd > 1e-5 {
			t.Errorf("training %v: output differs from the unfused path's by %.3g", training, dd)
		}
		if training {
			dd := maxDiff(grad, refGrad)
			t.Logf("gradient of qkv: max difference %.3g from the unfused path", dd)
			if dd > 1e-5 {
				t.Errorf("gradient of qkv differs from the unfused path's by %.3g", dd)
			}
		}
	}
}
