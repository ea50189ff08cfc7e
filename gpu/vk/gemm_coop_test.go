package vk

import (
	"os"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
	"blip/shaders"
)

// TestGemmCoop runs the F16 gemm cases of the parity table (gemm/f16_*:
// B in f32, the _bf32 builds, and in f16) through gemm_coop against the CPU
// backend at the cases' tolerances (cases_gemm_f16.go: the backends round
// A and B alike, so only fp32 summation order differs; the exact cases
// must match bit for bit, and fail if either operand's rounding to f16 is
// dropped or goes another way at a tie). It runs on devices with the
// tensor-core path (VK_KHR_cooperative_matrix, or BLIP_COOPMAT=1 with
// VK_NV_cooperative_matrix): in CI, Mesa 26 lavapipe (make test-coopmat).
// Elsewhere it is skipped, unless BLIP_REQUIRE_COOPMAT=1 asks for it;
// TestParity runs the same cases on any device, through the tiled
// shaders' F16 specialization where there is no tensor-core GEMM.
func TestGemmCoop(t *testing.T) {
	d := openTest(t)
	if d.coop == "" {
		if os.Getenv("BLIP_REQUIRE_COOPMAT") == "1" {
			t.Fatalf("%s: BLIP_REQUIRE_COOPMAT=1 but no cooperative-matrix GEMM (device: KHR %v, NV %v)", d.info.Name, d.info.CoopMatKHR, d.info.CoopMatNV)
		}
		t.Skipf("%s: no cooperative-matrix GEMM (needs VK_KHR_cooperative_matrix, or BLIP_COOPMAT=1 and VK_NV_cooperative_matrix)", d.info.Name)
	}
	t.Logf("%s: %s, workgroup %d", d.info.Name, d.coop, 4*d.info.SubgroupSize)
	d.rowsMode = rowsNever // the few-row cases too run on the tensor cores here
	ref := cpu.New()
	defer ref.Close()
	n := map[gpu.DType]int{}
	for _, c := range paritytest.Cases() {
		if c.Kernel != "gemm" || !strings.HasPrefix(c.Name, "gemm/f16_") {
			continue
		}
		g := sizedCall(c).(gpu.Gemm) // it must run here
		if !d.useCoop(g) {
			t.Fatalf("%s does not run on %s", c.Name, d.coop)
		}
		n[g.B.DType]++
		t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, d.coopShader(g.B.DType)) })
	}
	if n[gpu.F32] < 10 || n[gpu.F16] < 10 {
		t.Fatalf("only %d F16 gemm cases with B in f32 and %d with B in f16", n[gpu.F32], n[gpu.F16])
	}
}

// TestCoopShaders checks that every form of the tensor-core GEMM a device
// may get has its build for each type of B embedded (only the KHR 8x8x8
// form runs in CI).
func TestCoopShaders(t *testing.T) {
	for coop := range coopNames {
		d := &Device{coop: coop}
		for _, bt := range []gpu.DType{gpu.F16, gpu.F32} {
			name := d.coopShader(bt)
			if _, err := shaders.SPIRV(name); err != nil {
				t.Errorf("%s with B in %s: %v", coop, bt, err)
			}
			if bt == gpu.F32 && name == coop {
				t.Errorf("%s with B in f32 runs the f16-B build", coop)
			}
		}
	}
}
