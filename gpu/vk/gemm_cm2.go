package vk

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"blip/gpu"
)

// The F16 GEMM on NVIDIA's cooperative matrix 2 (shaders/gemm_cm2.comp):
// workgroup-scope matrices loaded as tensors, the staging through shared
// memory left to the driver. It takes the F16 calls that gemm_coop.glsl
// would otherwise run (forward and backward products of --precision fp16)
// on devices with VK_NV_cooperative_matrix2: f32 operands are first cast to
// f16 in the device scratch (cast.comp, round to nearest even: the
// rounding gpu.Gemm.F16 defines), then one dispatch runs the product.
//
// Opt-in (BLIP_COOPMAT2=1) until it has passed TestGemmCoop2 on a device
// that offers the extension: no GPU this project has had lent has run it
// yet (lavapipe and Mesa's drivers do not offer it). The module needs
// SPIR-V 1.6, so with the switch on the instance asks for Vulkan 1.3.
var coop2Env = os.Getenv("BLIP_COOPMAT2")

// coop2TileEnv forces a block, "WGxBMxBNxBK" (BLIP_COOP2_TILE, for
// measuring: e.g. 256x128x256x64); it must be one the device lists.
var coop2TileEnv = os.Getenv("BLIP_COOP2_TILE")

// cm2Caps is what a device offers of cooperative matrix 2 for gemm_cm2:
// the largest workgroup and matrix dimension at workgroup scope, and per
// workgroup size the granularities (M, N, K) of f16 x f16 + f32 matrices.
type cm2Caps struct {
	maxWG, maxDim uint32
	gran          map[uint32][3]uint32
}

// cm2Tile is a gemm_cm2 block: WG invocations computing BM x BN of C in K
// steps of BK.
type cm2Tile struct{ wg, bm, bn, bk uint32 }

func (t cm2Tile) String() string { return fmt.Sprintf("%dx%dx%dx%d", t.wg, t.bm, t.bn, t.bk) }

// cm2Tiles are the blocks tried, largest first: a first guess, not yet
// timed (the cm2 stage of gpu/bench/gpu_run.sh times each; BLIP_COOP2_TILE
// tries others).
var cm2Tiles = []cm2Tile{{256, 128, 256, 64}, {256, 128, 128, 64}, {128, 64, 64, 64}}

// fits reports whether the device runs block t.
func (c *cm2Caps) fits(t cm2Tile) bool {
	g, ok := c.gran[t.wg]
	return ok && t.wg <= c.maxWG && max(t.bm, t.bn, t.bk) <= c.maxDim &&
		g[0] > 0 && g[1] > 0 && g[2] > 0 && t.bm%g[0] == 0 && t.bn%g[1] == 0 && t.bk%g[2] == 0
}

// anyTile reports whether the device runs one of cm2Tiles.
func (c *cm2Caps) anyTile() bool {
	for _, t := range cm2Tiles {
		if c.fits(t) {
			return true
		}
	}
	return false
}

// parseCM2Tile reads BLIP_COOP2_TILE's form.
func parseCM2Tile(s string) (cm2Tile, error) {
	v, err := parseBlock("BLIP_COOP2_TILE", s, "WGxBMxBNxBK, e.g. 256x128x256x64", 4)
	if err != nil {
		return cm2Tile{}, err
	}
	return cm2Tile{v[0], v[1], v[2], v[3]}, nil
}

// parseBlock reads the n positive numbers of a block override such as
// "256x128x256x64" (environment variable name, its form for the error).
func parseBlock(name, s, form string, n int) ([]uint32, error) {
	f := strings.Split(s, "x")
	if len(f) != n {
		return nil, fmt.Errorf("%s=%q: want %s", name, s, form)
	}
	v := make([]uint32, n)
	for i, x := range f {
		u, err := strconv.ParseUint(x, 10, 32)
		if err != nil || u == 0 {
			return nil, fmt.Errorf("%s=%q: %q is not a positive number", name, s, x)
		}
		v[i] = uint32(u)
	}
	return v, nil
}

// cm2Tile picks the block for a batch of m x n products: the largest whose
// grid still fills the device, else the one with the most workgroups.
func (d *Device) cm2Tile(batch, m, n int64) (cm2Tile, error) {
	if d.cm2Force.wg != 0 {
		return d.cm2Force, nil
	}
	if coop2TileEnv != "" {
		t, err := parseCM2Tile(coop2TileEnv)
		if err == nil && !d.cm2.fits(t) {
			err = fmt.Errorf("BLIP_COOP2_TILE=%s: %s does not list that block for workgroup-scope f16 matrices", coop2TileEnv, d.info.Name)
		}
		return t, err
	}
	var last cm2Tile
	for _, t := range cm2Tiles {
		if !d.cm2.fits(t) {
			continue
		}
		last = t
		if ceilDiv(m, int64(t.bm))*ceilDiv(n, int64(t.bn))*batch >= int64(d.fillGroups(132)) {
			return t, nil
		}
	}
	if last.wg == 0 {
		return last, fmt.Errorf("gemm_cm2: %s lists none of the blocks %v", d.info.Name, cm2Tiles)
	}
	return last, nil
}

// useCoop2 reports whether g runs on gemm_cm2.
func (d *Device) useCoop2(g gpu.Gemm) bool {
	return d.cm2 != nil && g.F16 && g.A.DType == gpu.F32 && g.C.DType == gpu.F32
}

// cm2Dispatches lowers s to gemm_cm2: the casts of its f32 operands into
// the scratch, then the product in one dispatch. ok is false where the
// product does not fit one dispatch (a binding or the grid; gemm_coop
// splits those).
func (d *Device) cm2Dispatches(s *gemmShape, alpha, beta float32, act gpu.Act) (out []dispatch, ok bool, err error) {
	t, err := d.cm2Tile(s.batch, s.m, s.n)
	if err != nil {
		return nil, false, err
	}
	nA, nB, nC := s.spanA(s.batch, s.m), s.spanB(s.batch, s.n), s.spanC(s.batch, s.m, s.n)
	groups := [3]int64{ceilDiv(s.n, int64(t.bn)), ceilDiv(s.m, int64(t.bm)), s.batch}
	lim := d.limitElems()
	for i, g := range groups {
		if g > int64(d.maxGroups[i]) {
			return nil, false, nil
		}
	}
	if nA > lim || nB > lim || nC > lim {
		return nil, false, nil
	}
	av, bv, cv := s.A.Slice(0, nA), s.B.Slice(0, nB), s.C.Slice(0, nC)
	if !cm2Aligned(s, bv, cv) {
		return nil, false, nil
	}
	// The f16 copies: A always (gpu.Gemm's A is f32), B where it is f32
	// (weight gradients), at a 256-byte boundary after A's.
	offB := (nA + 127) &^ 127
	halves := offB
	if bv.DType == gpu.F32 {
		halves += nB
	}
	sb, err := d.scratchBuf(2 * halves)
	if err != nil {
		return nil, false, err
	}
	scratch := gpu.View{Buf: sb, Len: halves, DType: gpu.F16}
	cast := func(x gpu.View, at, n int64) (gpu.View, error) {
		y := scratch.Slice(at, n)
		ds, err := castKernel(d, gpu.Cast{X: x, Y: y, N: int(n)})
		out = append(out, ds...)
		return y, err
	}
	if av, err = cast(av, 0, nA); err != nil {
		return nil, false, err
	}
	if bv.DType == gpu.F32 {
		if bv, err = cast(bv, offB, nB); err != nil {
			return nil, false, err
		}
	}
	sa, sbt, sc := s.sa, s.sb, s.sc
	if s.batch == 1 {
		sa, sbt, sc = 0, 0, 0
	}
	var bias gpu.View
	if s.Bias.Buf != nil {
		bias = s.Bias.Slice(0, s.n)
	}
	out = append(out, dispatch{
		shader: "gemm_cm2",
		spec:   []uint32{t.wg, t.bm, t.bn, t.bk, b2u(s.ta), b2u(s.tb)},
		binds:  []binding{rd(av), rd(bv), wr(cv), rd(bias)},
		push:   d.gemmPush(s, av, bv, cv, bias, s.m, s.n, sa, sbt, sc, alpha, beta, act),
		groups: [3]uint32{uint32(groups[0]), uint32(groups[1]), uint32(groups[2])},
	})
	return out, true, nil
}

// cm2Aligned reports whether every tensor gemm_cm2 loads or stores for s
// starts on 16 bytes, as coopMatLoadTensorNV and coopMatStoreTensorNV
// require of their base (GL_NV_cooperative_matrix2, issue 1; the rows
// within need no alignment): the f16 copies of A (and of an f32 B) start
// on 256 bytes in the scratch, so their batch strides must keep it; an
// f16 B is read in place, and C written in place.
func cm2Aligned(s *gemmShape, bv, cv gpu.View) bool {
	al := func(bytes int64) bool { return bytes%16 == 0 }
	if bv.DType != gpu.F32 && !al(bv.ByteOff()) || !al(cv.ByteOff()) {
		return false
	}
	return s.batch == 1 || al(2*s.sa) && al(2*s.sb) && al(4*s.sc)
}

// Structure types and sizes of VK_NV_cooperative_matrix2 (newer than
// vulkan-go's headers).
const (
	stCoop2Features   = 1000593000 // VkPhysicalDeviceCooperativeMatrix2FeaturesNV
	stCoop2FlexProps  = 1000593001 // VkCooperativeMatrixFlexibleDimensionsPropertiesNV
	stCoop2Props      = 1000593002 // VkPhysicalDeviceCooperativeMatrix2PropertiesNV
	sizeCoop2Features = 48
	sizeCoop2Flex     = 56
)

// Feature bits of VkPhysicalDeviceCooperativeMatrix2FeaturesNV that
// gemm_cm2 and attention_cm2 use, by byte offset: workgroup scope,
// flexible dimensions, reductions (the softmax's row maxima and sums),
// conversions (probabilities to f16 operands), per-element operations (the
// epilogues), tensor addressing (the loads and stores).
var cm2FeatureOffsets = []int{16, 20, 24, 28, 32, 36}

// cm2Usable reports whether the features queried into f (a
// VkPhysicalDeviceCooperativeMatrix2FeaturesNV) include all gemm_cm2 needs.
func cm2Usable(f unsafe.Pointer) bool {
	if get32(f, 0) != stCoop2Features {
		return false
	}
	for _, o := range cm2FeatureOffsets {
		if get32(f, o) == 0 {
			return false
		}
	}
	return true
}

// cm2Granularities lists, per workgroup size, the granularities of the
// workgroup-scope f16 x f16 + f32 matrices the device offers
// (vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV).
func (in *instance) cm2Granularities(pd vk.PhysicalDevice) map[uint32][3]uint32 {
	const f16, f32, workgroup = 0, 1, 2 // VkComponentTypeKHR, VkScopeKHR
	out := map[uint32][3]uint32{}
	in.eachStruct(pd, "vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV", stCoop2FlexProps, sizeCoop2Flex, func(p unsafe.Pointer) {
		// MGranularity, NGranularity, KGranularity at 16, 20, 24; A, B, C,
		// result types at 28..40; saturating at 44, scope at 48,
		// workgroupInvocations at 52.
		if get32(p, 28) == f16 && get32(p, 32) == f16 && get32(p, 36) == f32 && get32(p, 40) == f32 &&
			get32(p, 44) == 0 && get32(p, 48) == workgroup {
			out[get32(p, 52)] = [3]uint32{get32(p, 16), get32(p, 20), get32(p, 24)}
		}
	})
	return out
}

// useCM2 reports whether a device opened with pi runs gemm_cm2 and
// attention_cm2: asked for (BLIP_COOPMAT2=1), offered, on top of the KHR
// 16 x 16 x 16 tensor-core GEMM (which keeps the products gemm_cm2 does
// not take), with the RoundingModeRTE mode for f16 (attention_cm2's
// probabilities).
func useCM2(pi physInfo) bool {
	s, _, _ := coopChoice(pi)
	return coop2Env == "1" && pi.cm2 != nil && s == "gemm_coop_khr" && pi.rte16
}
