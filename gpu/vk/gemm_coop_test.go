package vk

import (
	"math"
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
// tensor-core path (BLIP_COOPMAT=1 on a GPU with VK_NV_cooperative_matrix)
// and is skipped elsewhere.
func TestGemmCoop(t *testing.T) {
	d := openTest(t)
	if !d.coop {
		t.Skipf("%s: no cooperative-matrix GEMM (needs BLIP_COOPMAT=1 and VK_NV_cooperative_matrix)", d.info.Name)
	}
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
