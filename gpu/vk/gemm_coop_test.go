package vk

import (
	"math"
	"os"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// TestGemmCoop runs every gemm case with B in f16 through gemm_coop.comp
// against the CPU backend. The tensor cores read A in f16, so A is rounded
// to f16 first: the products are then exact and only the fp32 summation
// order differs, as for the other GEMMs. It runs on devices with the
// tensor-core path (VK_KHR_cooperative_matrix, or BLIP_COOPMAT=1 with
// VK_NV_cooperative_matrix): in CI, Mesa 26 lavapipe (make test-coopmat).
// Elsewhere it is skipped, unless BLIP_REQUIRE_COOPMAT=1 asks for it.
func TestGemmCoop(t *testing.T) {
	d := openTest(t)
	if d.coop == "" {
		if os.Getenv("BLIP_REQUIRE_COOPMAT") == "1" {
			t.Fatalf("%s: BLIP_REQUIRE_COOPMAT=1 but no cooperative-matrix GEMM (device: KHR %v, NV %v)", d.info.Name, d.info.CoopMatKHR, d.info.CoopMatNV)
		}
		t.Skipf("%s: no cooperative-matrix GEMM (needs VK_KHR_cooperative_matrix, or BLIP_COOPMAT=1 and VK_NV_cooperative_matrix)", d.info.Name)
	}
	t.Logf("%s: %s, workgroup %d", d.info.Name, d.coop, 4*d.info.SubgroupSize)
	ref := cpu.New()
	defer ref.Close()
	n := 0
	for _, c := range paritytest.Cases() {
		if c.Kernel != "gemm" || !strings.HasPrefix(c.Name, "gemm/f16b_") {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			in := c.Inputs()
			for i, w := range in[0] {
				in[0][i] = math.Float32bits(gpu.Round(gpu.F16, math.Float32frombits(w)))
			}
			rb, err := c.Exec(ref, in)
			if err != nil {
				t.Fatal(err)
			}
			want := make([][]uint32, len(c.Tensors))
			for k, tn := range c.Tensors {
				want[k] = rb[k][tn.Off : tn.Off+tn.Len]
			}
			got, err := c.Exec(d, in)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Compare(want, got)
			t.Logf("worst error %.3g (tol %.3g)", r.Worst, c.Tol)
			for _, p := range r.Problems {
				t.Error(p)
			}
			for _, m := range r.Bad {
				t.Errorf("%s[%d] = %s, want %s (error %.3g > tol %.3g)", m.Tensor, m.Index, m.Got, m.Want, m.Err, c.Tol)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d f16 gemm cases", n)
	}
}
