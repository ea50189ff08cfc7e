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
// BLIP_COOPMAT=0 turns both off. Where NVIDIA's cooperative matrix 2 is
// offered and asked for (BLIP_COOPMAT2=1), gemm_cm2.go takes these calls
// first.
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

// coopMode picks the tensor-core GEMM's block: by problem size
// (coopAuto), or always the four-subgroup (coopSmall) or the wide
// (coopWide) one (BLIP_COOP_TILE=small|wide; tests set it per device).
type coopMode int

const (
	coopAuto coopMode = iota
	coopSmall
	coopWide
)

var (
	coopTileEnv    = map[string]coopMode{"small": coopSmall, "wide": coopWide}[os.Getenv("BLIP_COOP_TILE")]
	coopSWRoundEnv = os.Getenv("BLIP_COOP_SWROUND") == "1" // rounding.go
	// coopDiagEnv is a profiling switch of the _t builds that breaks
	// results on purpose (BLIP_COOP_DIAG=1: no products, so that a
	// benchmark times the staging alone; =2: only the first K step staged,
	// timing the fragment loads and products alone).
	coopDiagEnv = map[string]uint32{"1": 1, "2": 2}[os.Getenv("BLIP_COOP_DIAG")]
	// coopStageK4 sends every layout to the _t builds' staging
	// (BLIP_COOP_STAGE=k4), the forward ones included, for measuring it
	// against the forward staging on the same binary.
	coopStageK4 = os.Getenv("BLIP_COOP_STAGE") == "k4"
	// coopPrefetch2 sends the forward layouts with an f16 B (inference's
	// products) to the _p2 builds (BLIP_COOP_PREFETCH=2), whose K loop
	// issues a step's loads two steps ahead. The H200's profile of the
	// forward staging (gpu/bench/NOTES.md) reads as latency-bound with one
	// step in flight; not yet timed on a GPU, hence opt-in.
	coopPrefetch2 = os.Getenv("BLIP_COOP_PREFETCH") == "2"
)

// coopFrag is the fragment size of d's cooperative-matrix shaders.
func (d *Device) coopFrag() uint32 {
	if strings.HasPrefix(d.coop, "gemm_coop8") {
		return 8
	}
	return 16
}

// coopTile is the block of gemm_coop.glsl that runs an m x n (batch)
// product: the wide one (eight subgroups, 8 FRAG x 8 FRAG: 128 x 128 at
// FRAG 16) where its grid still fills the device (fillGroups), else the
// four-subgroup one (64 x 64; four times the workgroups at FRAG 16).
func (d *Device) coopTile(batch, m, n int) gemmTile {
	f := d.coopFrag()
	small := gemmTile{bm: 64, bn: 64, bk: 32, tm: f, tn: f, eff: 1, coop: true}
	wide := gemmTile{bm: 8 * f, bn: 8 * f, bk: 32, tm: f, tn: f, eff: 1, coop: true, wide: true}
	mode := d.coopMode
	if mode == coopAuto {
		mode = coopTileEnv
	}
	fitsWide := 8*d.info.SubgroupSize <= d.maxInvocations && coopShared(wide) <= d.info.SharedMemBytes
	switch {
	case mode == coopSmall || !fitsWide:
		return small
	case mode == coopWide:
		return wide
	}
	// Wide where its grid still fills the device (as in pickTile).
	groups := ceilDiv(int64(m), int64(wide.bm)) * ceilDiv(int64(n), int64(wide.bn)) * int64(batch)
	if groups >= int64(d.fillGroups(132)) {
		return wide
	}
	return small
}

// coopShared is the shared memory of gemm_coop.glsl's block t: sA and sB
// (f16, rows of BK + 8), and per subgroup FRAG rows of its part of C (fp32,
// rows of WN * FRAG + 4).
func coopShared(t gemmTile) int {
	wn := 32 / t.tn // fragments per subgroup along N
	if t.wide {
		wn = 2
	}
	return int(t.bm+t.bn)*int(t.bk+8)*2 + int(t.subgroups()*t.tm)*int(wn*t.tn+4)*4
}

// subgroups is the workgroup size of a gemm_coop.glsl block in subgroups.
func (t gemmTile) subgroups() uint32 {
	if t.wide {
		return 8
	}
	return 4
}

// useCoop reports whether g runs on the cooperative-matrix GEMM: every
// call with F16 where the device has one (B is f32 or f16 then; Check
// refuses bf16).
func (d *Device) useCoop(g gpu.Gemm) bool {
	if d.coop == "" || !g.F16 {
		return false
	}
	if g.A.DType == gpu.F32 && g.C.DType == gpu.F32 {
		return true
	}
	// 16-bit activations: f16 (bf16 is not a tensor-core input here, and
	// Check refuses a bf16 A), in the builds that take an f16 B (the
	// _bf32 ones declare no 16-bit storage).
	return g.B.DType == gpu.F16 && g.A.DType != gpu.BF16 && g.C.DType != gpu.BF16
}

// coopShader is the build of d.coop for B of type bt, the block and the
// layout: the _bf32 one for an f32 B, the w(ide) one for eight subgroups,
// the _t one (gemm_coop_stage_t.glsl) where an operand is staged along m
// or n, the _p2 one (two K steps in flight) for the others with an f16 B
// under BLIP_COOP_PREFETCH=2.
func (d *Device) coopShader(bt gpu.DType, wide, along bool) string {
	base, khr := strings.CutSuffix(d.coop, "_khr")
	if wide {
		base += "w"
	}
	if bt == gpu.F32 {
		base += "_bf32"
	}
	if along {
		base += "_t"
	} else if coopPrefetch2 && bt == gpu.F16 {
		base += "_p2"
	}
	if khr {
		base += "_khr"
	}
	return base
}

// coopDispatch runs one block of t per workgroup of four subgroups (eight:
// wide). TransA and
// TransB go in flag bits 3 and 4, and vec4 staging of A and B in bits 5
// and 6 (not specialization constants: one pipeline per build, where
// cooperative matrices are slow to compile). vec4 staging runs along the
// dimension the operand is contiguous in: k (A not transposed, B
// transposed: a linear layer's forward) or, with bits 7 and 8, m or n (A
// transposed, B not: the gradients of training); that dimension, the
// leading dimension, batch stride and binding offset must be multiples
// of 4. Calls with an operand staged along m or n run the _t builds
// (gemm_coop_stage_t.glsl), which stage those layouts in 4 x 4 blocks (on an
// H200, 2026-11-28: 1.3x faster where B is stored (K, N), 2.9x where A is
// stored (K, M)); the forward layout stays on gemm_coop.glsl, faster there.
func (d *Device) coopDispatch(s *gemmShape, t gemmTile, av, bv, cv, bias gpu.View, push []uint32, groups [3]uint32) dispatch {
	const pM, pN, pK, pLda, pLdb, pOffA, pOffB, pStrideA, pStrideB = 0, 1, 2, 3, 4, 6, 7, 10, 11
	aligned := func(v ...uint32) bool {
		for _, x := range v {
			if x%4 != 0 {
				return false
			}
		}
		return true
	}
	dimA, dimB := push[pK], push[pK] // the contiguous dimensions
	if s.ta {
		dimA = push[pM]
	}
	if !s.tb {
		dimB = push[pN]
	}
	vecA := aligned(dimA, push[pLda], push[pOffA], push[pStrideA])
	vecB := aligned(dimB, push[pLdb], push[pOffB], push[pStrideB])
	alongM, alongN := vecA && s.ta, vecB && !s.tb
	push[len(push)-1] |= b2u(s.ta)<<3 | b2u(s.tb)<<4 | b2u(vecA)<<5 | b2u(vecB)<<6 | b2u(alongM)<<7 | b2u(alongN)<<8
	return dispatch{
		shader: d.coopShader(bv.DType, t.wide, alongM || alongN || coopStageK4),
		spec: []uint32{t.subgroups() * uint32(d.info.SubgroupSize), b2u(d.roundsInShader()), coopDiagEnv,
			b2u(av.DType == gpu.F16), b2u(cv.DType == gpu.F16)},
		binds:  []binding{rd(av), rd(bv), wr(cv), rd(bias)},
		push:   push,
		groups: groups,
	}
}
