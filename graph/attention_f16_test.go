package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// TestAttentionF16Plans checks when the fused attention runs its products
// in f16: under f16 weight storage, in inference plans and in training
// plans alike, forward and backward (gpu.Attention.F16,
// gpu.AttentionBackward.F16, as autocast runs attention in fp16
// training), except over at most f16MinQueries queries; never under bf16
// or fp32 storage. The f16 training plan's input gradient stays within f16
// rounding of the fp32 plan's, and differs from it (the roundings are
// applied); on a Vulkan device the plans give the CPU's gradients (through
// the tensor-core GEMM and attention under make test-coopmat).
func TestAttentionF16Plans(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	grads := attentionF16Grads(t, be)
	// fp16 against fp32: the roundings of every product's operands (the
	// linear layer's three and attention's five, 2^-11 relative each) move
	// the gradient by some units of f16 rounding of its scale (about 10
	// here); 16 is a sanity bound, the parity tables check the kernels
	// exactly. A wiring fault (a lost Scale, a mask or causal shape not
	// the forward's) errs by tens of percent.
	g16, g32 := grads[gpu.F16], grads[gpu.F32]
	worst, scale := maxDiff(g16, g32)
	t.Logf("input gradient: f16 plan within %.3g of fp32's (scale %.3g)", worst, scale)
	if worst == 0 || worst > 16*scale/2048 {
		t.Errorf("f16 plan's input gradient is %.3g from fp32's (scale %.3g): want above 0, at most 16 units of f16 rounding", worst, scale)
	}

	// The same plans on the Vulkan device (in make test-coopmat, the
	// tensor-core kernels) against the CPU's: fp32 to vulkanTol; f16 to
	// two units of f16 rounding of the scale, for an operand that the two
	// backends' fp32 sums put on either side of a rounding boundary.
	t.Run("vulkan", func(t *testing.T) {
		vg := attentionF16Grads(t, openVulkan(t))
		for dt, tol := range map[gpu.DType]float64{gpu.F32: vulkanTol, gpu.F16: 2.0 / 2048} {
			worst, scale := maxDiff(vg[dt], grads[dt])
			t.Logf("%s plans: Vulkan input gradient within %.3g of the CPU's (scale %.3g)", dt, worst, scale)
			if worst > tol*scale {
				t.Errorf("%s plans: Vulkan input gradient %.3g from the CPU's (scale %.3g, tol %.3g)", dt, worst, scale, tol)
			}
		}
	})
}

// attentionF16Grads builds and checks TestAttentionF16Plans's plans on be
// and returns the input gradients of the training plans with 9 queries
// under f16 and f32 storage.
func attentionF16Grads(t *testing.T, be gpu.Backend) map[gpu.DType][]float32 {
	const b, heads, c = 2, 2, 32
	grads := map[gpu.DType][]float32{}
	for _, tc := range []struct {
		dt   gpu.DType
		tq   int
		want bool
	}{
		{gpu.F16, 9, true}, {gpu.F16, f16MinQueries, false}, {gpu.BF16, 9, false}, {gpu.F32, 9, false},
	} {
		ps := NewParams()
		w, err := ps.New("w", c, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Alloc(be); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		if err := w.Write(randData(rng, c*c, 0.3)); err != nil {
			t.Fatal(err)
		}
		if err := ps.SetStorage(tc.dt); err != nil {
			t.Fatal(err)
		}
		g := New()
		x := g.Input("x", gpu.F32, b, tc.tq, c)
		h := g.Linear(x, g.Param(w), nil)
		y := g.Attention(h, h, h, AttentionOpts{Heads: heads, Causal: true})
		loss := g.Mean(g.Mul(y, y))
		for _, training := range []bool{false, true} {
			cfg := Config{Outputs: []*Tensor{y}}
			if training {
				cfg = Config{Loss: loss, GradInputs: []*Tensor{x}}
			}
			p, err := g.Compile(be, cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, call := range p.calls {
				f16, ok := false, true
				switch a := call.(type) {
				case gpu.Attention:
					f16 = a.F16
				case gpu.AttentionBackward:
					f16 = a.F16
				default:
					ok = false
				}
				if ok {
					n++
					if f16 != tc.want {
						t.Errorf("%s storage, %d queries, training %v: %s with F16 %v, want %v", tc.dt, tc.tq, training, call.Kernel(), f16, tc.want)
					}
				}
			}
			if want := 1 + b2i(training); n != want {
				t.Errorf("%s storage, training %v: %d attention calls, want %d", tc.dt, training, n, want)
			}
			if training && tc.tq == 9 && tc.dt != gpu.BF16 {
				xv := randData(rand.New(rand.NewPCG(9, 10)), b*tc.tq*c, 1)
				if err := p.WriteF32(x, xv); err != nil {
					t.Fatal(err)
				}
				if err := p.Run(); err != nil {
					t.Fatal(err)
				}
				dx := make([]float32, len(xv))
				if err := p.ReadF32(p.Grad(x), dx); err != nil {
					t.Fatal(err)
				}
				grads[tc.dt] = dx
			}
			p.Close()
		}
		ps.Free()
	}
	return grads
}

// maxDiff is the largest |a[i] - b[i]| and the largest |b[i]|.
func maxDiff(a, b []float32) (worst, scale float64) {
	for i := range b {
		scale = math.Max(scale, math.Abs(float64(b[i])))
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst, scale
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
