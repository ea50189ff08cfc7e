package graph

import (
	"math"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/gputest"
)

// openVulkan is gputest.Vulkan: the best Vulkan device, validated under
// BLIP_VALIDATE=1, skipped without one unless BLIP_REQUIRE_VULKAN=1.
func openVulkan(t *testing.T) gpu.Backend { return gputest.Vulkan(t) }

// vulkanTol bounds the difference between the Vulkan and the CPU gradients
// relative to the largest CPU gradient element. Both are fp32 with the same
// algorithms; they differ in summation order (tiled GEMM and workgroup
// reductions against blocked loops and float64 accumulators in the CPU
// twins) and in the shaders' exp/erf/tanh approximations, a few ulps each:
// over the short sums of these cases, 1e-4 leaves a wide margin while an
// indexing or accumulation bug is off by O(1).
const vulkanTol = 1e-4

// TestVulkanMatchesCPU runs every gradient check on the Vulkan device: the
// gradients must pass the numeric check there too and agree with the CPU
// backend's.
func TestVulkanMatchesCPU(t *testing.T) {
	vk := openVulkan(t)
	ref := cpu.New()
	defer ref.Close()
	modes := []GradMode{AsInputs, AsParams}
	if testing.Short() {
		modes = modes[:1]
	}
	worst := 0.0
	for i := range gradCases {
		c := gradCases[i].GradCheck
		if c.Seed == 0 {
			c.Seed = uint64(i + 1)
		}
		t.Run(c.Name, func(t *testing.T) {
			for _, mode := range modes {
				got, err := c.Analytic(vk, mode)
				if err != nil {
					t.Fatalf("%v: %v", mode, err)
				}
				want, err := c.Analytic(ref, mode)
				if err != nil {
					t.Fatalf("%v: cpu: %v", mode, err)
				}
				for k := range want.Grads {
					d := maxRelDiff(got.Grads[k], want.Grads[k])
					worst = math.Max(worst, d)
					if !(d <= vulkanTol) {
						t.Errorf("%v: gradient of %s differs from the CPU's by %.3g of its scale", mode, want.Names[k], d)
					}
				}
				if d := maxRelDiff(got.Out, want.Out); !(d <= vulkanTol) {
					t.Errorf("%v: output differs from the CPU's by %.3g", mode, d)
				}
			}
			if err := c.Check(vk, AsInputs); err != nil {
				t.Error(err)
			}
		})
	}
	t.Logf("largest Vulkan-CPU gradient difference: %.3g of scale", worst)
}

// TestVulkanTrainingStep runs a training step of the transformer block on
// the Vulkan device and on the CPU backend (same parameters, batch and
// dropout seed: the Philox masks are bit-identical) and compares the loss
// and every parameter gradient. This exercises the arena on the device:
// many tensors in one buffer, memory reused between them, so that the
// recorder's hazard tracking over byte ranges decides correctness.
func TestVulkanTrainingStep(t *testing.T) {
	vk := openVulkan(t)
	ref := cpu.New()
	defer ref.Close()
	step := func(be gpu.Backend) (float32, [][]float32, []string) {
		blk := newBlock(t, be)
		defer blk.ps.Free()
		plan := blk.compile(t, be, Config{Loss: blk.loss, Outputs: []*Tensor{blk.loss}})
		defer plan.Close()
		plan.SetSeed(42)
		loss := blk.lossOf(t, plan, true)
		var names []string
		for _, p := range blk.ps.List() {
			names = append(names, p.Name())
		}
		return loss, readGrads(t, blk.ps), names
	}
	lv, gv, names := step(vk)
	lc, gc, _ := step(ref)
	if d := math.Abs(float64(lv - lc)); d > vulkanTol*math.Abs(float64(lc)) {
		t.Errorf("loss %g on Vulkan, %g on the CPU", lv, lc)
	}
	// Some gradients are zero in exact arithmetic (the key bias: softmax
	// ignores a shift shared by all keys), so their fp32 values are
	// rounding noise. Each is therefore compared relative to its own
	// largest element or, if larger, 1e-3 of the largest gradient element
	// of the model.
	global := 0.0
	for _, g := range gc {
		for _, v := range g {
			global = math.Max(global, math.Abs(float64(v)))
		}
	}
	for i := range gc {
		scale, worst := 1e-3*global, 0.0
		for j, v := range gc[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
			worst = math.Max(worst, math.Abs(float64(gv[i][j]-v)))
		}
		if d := worst / scale; !(d <= vulkanTol) {
			t.Errorf("gradient of %s differs from the CPU's by %.3g of its scale", names[i], d)
		}
	}
}
