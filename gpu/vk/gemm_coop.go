package vk

import (
	"os"

	"blip/gpu"
)

// Tensor-core GEMM (shaders/gemm_coop.comp) for products whose B is f16:
// the weights under --precision fp16. A is rounded to f16 on the way in
// (as autocast does), accumulation is fp32.
//
// One GLSL source, two SPIR-V forms: gemm_coop.spv uses NV cooperative
// matrices (what Debian 12's glslc compiles), gemm_coop_khr.spv is the same
// module translated to the Khronos extension by shaders/nv2khr at build
// time. Each comes in two fragment sizes: 16 x 16 x 16 (gemm_coop, what
// tensor cores run) and 8 x 8 x 8 (gemm_coop8, the only shape lavapipe
// lists). The KHR form is preferred wherever the device lists one of the
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

// useCoop reports whether g runs on the cooperative-matrix GEMM.
func (d *Device) useCoop(g gpu.Gemm) bool {
	return d.coop != "" && g.B.DType == gpu.F16
}

// coopDispatch runs one block per workgroup of four subgroups.
func (d *Device) coopDispatch(s *gemmShape, av, bv, cv, bias gpu.View, push []uint32, groups [3]uint32) dispatch {
	return dispatch{
		shader: d.coop,
		spec:   []uint32{4 * uint32(d.info.SubgroupSize), b2u(s.ta), b2u(s.tb)},
		binds:  []binding{rd(av), rd(bv), wr(cv), rd(bias)},
		push:   push,
		groups: groups,
	}
}
