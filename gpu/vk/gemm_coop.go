package vk

import (
	"os"
	"strings"

	"blip/gpu"
)

// Tensor-core GEMM (shaders/gemm_coop.glsl) for the calls with F16
// (gpu.Gemm.F16, half-precision products), and only those: then its
// rounding of A (and of an f32 B) to f16 is what the call asks for, and
// every F16 call runs on it, whatever B's type: f16 weights (--precision
// fp16: forward and input-gradient products) or an f32 B (the weight
// gradient dW = dY^T X of fp16 mixed-precision training, the _bf32 builds,
// which round B on the way in as they round A). Accumulation is fp32. The
// calls without F16, 16-bit B included, run the tiled shaders with A in
// fp32.
//
// One GLSL source, two SPIR-V forms: gemm_coop.spv uses NV cooperative
// matrices (what Debian 12's glslc compiles), gemm_coop_khr.spv is the same
// module translated to the Khronos extension by shaders/nv2khr at build
// time. Each comes in two fragment sizes: 16 x 16 x 16 (gemm_coop, what
// tensor cores run) and 8 x 8 x 8 (gemm_coop8, the only shape lavapipe
// lists), and for two types of B (f16; f32 in the _bf32 builds). The KHR form is preferred wherever the device lists one of the
// shapes (f16 x f16 + f32, subgroup scope); it is tested for parity in CI
// on lavapipe from Mesa 26 (.ci/trixie-tools, make test-coopmat). The NV form has not run
// on any device this project has tested on, so it stays opt-in
// (BLIP_COOPMAT=1) for devices without the KHR extension.
// BLIP_COOPMAT=0 turns both off.
var coopEnv = os.Getenv("BLIP_COOPMAT")

// coopChoice picks the cooperative-matrix shader for a device, with the
// device extension and feature structure it needs, or "" for none.
func coopChoice(pi physInfo) (shader, ext string, featureType uint32) {
	switch {
	case coopEnv == "0" || !pi.info.Storage16:
		return "", "", 0
	case pi.coopKHR == 16:
		return "gemm_coop_khr", "VK_KHR_cooperative_matrix", stCoopMatKHR
	case pi.coopKHR == 8:
		return "gemm_coop8_khr", "VK_KHR_cooperative_matrix", stCoopMatKHR
	case pi.coopNV && coopEnv == "1" && pi.info.SubgroupSize > 0:
		return "gemm_coop", "VK_NV_cooperative_matrix", stCoopMatNV
	}
	return "", "", 0
}

// coopNames are the shaders as DeviceInfo.CoopGemm reports them.
var coopNames = map[string]string{
	"gemm_coop_khr": "KHR 16x16x16", "gemm_coop8_khr": "KHR 8x8x8", "gemm_coop": "NV 16x16x16",
}

// coopTile is gemm_coop.comp's fixed block (its BM x BN).
var coopTile = gemmTile{bm: 64, bn: 64, bk: 32, tm: 16, tn: 16, eff: 1, coop: true}

// useCoop reports whether g runs on the cooperative-matrix GEMM: every
// call with F16 where the device has one (B is f32 or f16 then; Check
// refuses bf16).
func (d *Device) useCoop(g gpu.Gemm) bool {
	return d.coop != "" && g.F16
}

// coopShader is the build of d.coop for B of type bt: the _bf32 one for an
// f32 B.
func (d *Device) coopShader(bt gpu.DType) string {
	if bt != gpu.F32 {
		return d.coop
	}
	if base, ok := strings.CutSuffix(d.coop, "_khr"); ok {
		return base + "_bf32_khr"
	}
	return d.coop + "_bf32"
}

// coopDispatch runs one block per workgroup of four subgroups. TransA and
// TransB go in flag bits 3 and 4, and vec4 staging of A and B in bits 5
// and 6 (not specialization constants: one pipeline per build, where
// cooperative matrices are slow to compile). vec4 staging needs the
// operand contiguous along k (A not transposed, B transposed: a linear
// layer's forward) with K, its leading dimension, batch stride and
// binding offset multiples of 4.
func (d *Device) coopDispatch(s *gemmShape, av, bv, cv, bias gpu.View, push []uint32, groups [3]uint32) dispatch {
	const pK, pLda, pLdb, pOffA, pOffB, pStrideA, pStrideB = 2, 3, 4, 6, 7, 10, 11
	aligned := func(v ...uint32) bool {
		for _, x := range v {
			if x%4 != 0 {
				return false
			}
		}
		return true
	}
	vecA := !s.ta && aligned(push[pK], push[pLda], push[pOffA], push[pStrideA])
	vecB := s.tb && aligned(push[pK], push[pLdb], push[pOffB], push[pStrideB])
	push[len(push)-1] |= b2u(s.ta)<<3 | b2u(s.tb)<<4 | b2u(vecA)<<5 | b2u(vecB)<<6
	return dispatch{
		shader: d.coopShader(bv.DType),
		spec:   []uint32{4 * uint32(d.info.SubgroupSize)},
		binds:  []binding{rd(av), rd(bv), wr(cv), rd(bias)},
		push:   push,
		groups: groups,
	}
}
