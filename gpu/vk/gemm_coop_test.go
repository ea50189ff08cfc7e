package vk

import (
	"os"
	"slices"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
	"blip/shaders"
)

// TestGemmCoop runs the F16 gemm cases of the parity table (gemm/f16_*:
// B in f32, the _bf32 builds, and in f16) through gemm_coop, in both its
// blocks (four subgroups and the wide eight), against the CPU
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
	d.rowsMode = rowsNever // the few-row cases too run on the tensor cores here
	defer func() { d.coopMode = coopAuto }()
	ref := cpu.New()
	defer ref.Close()
	defer func() { d.swRound = false }()
	// The small block also with the rounding in integer arithmetic and the
	// RoundingModeRTE mode stripped (rounding.go), as devices without the
	// mode run it.
	defer func() { coopStageK4, coopPrefetch2 = false, false }()
	// The k4 mode runs every layout on the _t builds' staging
	// (BLIP_COOP_STAGE=k4), the forward ones included; the p2 modes the
	// forward layouts with an f16 B on the _p2 builds
	// (BLIP_COOP_PREFETCH=2).
	for _, mode := range []struct {
		name             string
		mode             coopMode
		wide, sw, k4, p2 bool
	}{{"small", coopSmall, false, false, false, false}, {"wide", coopWide, true, false, false, false},
		{"small_swround", coopSmall, false, true, false, false}, {"wide_k4", coopWide, true, false, true, false},
		{"small_p2", coopSmall, false, false, false, true}, {"wide_p2", coopWide, true, false, false, true}} {
		if mode.wide && 8*d.info.SubgroupSize > d.maxInvocations {
			t.Errorf("%s: the wide block needs %d invocations, the device allows %d", d.info.Name, 8*d.info.SubgroupSize, d.maxInvocations)
			continue
		}
		d.coopMode, d.swRound, coopStageK4, coopPrefetch2 = mode.mode, mode.sw, mode.k4, mode.p2
		n := map[gpu.DType]int{}
		staged := map[string]int{}
		builds := map[bool]int{} // cases on the forward builds, on the _t builds
		p2 := 0                  // cases on the _p2 builds
		for _, c := range paritytest.Cases() {
			if c.Kernel != "gemm" || !strings.HasPrefix(c.Name, "gemm/f16_") {
				continue
			}
			g := sizedCall(c).(gpu.Gemm) // it must run here
			if !d.useCoop(g) {
				t.Fatalf("%s does not run on %s", c.Name, d.coop)
			}
			stg := coopStaging(t, d, g)
			along := slices.Contains(stg, "A vec4 m") || slices.Contains(stg, "B vec4 n")
			want := d.coopShader(g.B.DType, mode.wide, along || mode.k4)
			if got := shadersOf(t, d, g); got != want {
				t.Fatalf("%s ran on %s, want %s", c.Name, got, want)
			}
			n[g.B.DType]++
			for _, k := range stg {
				staged[k]++
			}
			builds[strings.HasSuffix(strings.TrimSuffix(want, "_khr"), "_t")]++
			if strings.Contains(want, "_p2") {
				p2++
			}
			t.Run(mode.name+"/"+c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, want) })
		}
		if n[gpu.F32] < 10 || n[gpu.F16] < 10 {
			t.Fatalf("only %d F16 gemm cases with B in f32 and %d with B in f16", n[gpu.F32], n[gpu.F16])
		}
		// Every staging of both operands ran: vec4 along k and along m or
		// n, element by element with either dimension contiguous.
		for _, k := range []string{"A vec4 k", "A vec4 m", "A k", "A m", "B vec4 k", "B vec4 n", "B k", "B n"} {
			if staged[k] == 0 {
				t.Errorf("%s: no case staged %s (%v)", mode.name, k, staged)
			}
		}
		if mode.k4 && builds[false] > 0 || !mode.k4 && (builds[false] < 10 || builds[true] < 5) {
			t.Errorf("%s: %d cases on the forward builds, %d on the _t builds", mode.name, builds[false], builds[true])
		}
		if mode.p2 != (p2 >= 10) {
			t.Errorf("%s: %d cases on the _p2 builds", mode.name, p2)
		}
	}
}

// coopStaging names how g's tensor-core dispatches stage A and B (their
// push flags: vec4 or elements, along k or along m or n), one name per
// operand, or fails where its dispatches differ.
func coopStaging(t *testing.T, d *Device, g gpu.Gemm) []string {
	t.Helper()
	ds, err := gemmKernel(d, g)
	if err != nil {
		t.Fatal(err)
	}
	var a, b string
	for i, x := range ds {
		fl := x.push[len(x.push)-1]
		ka := map[bool]string{false: "A k", true: "A m"}[fl&8 != 0]
		if fl&32 != 0 {
			ka = map[bool]string{false: "A vec4 k", true: "A vec4 m"}[fl&128 != 0]
		}
		kb := map[bool]string{false: "B n", true: "B k"}[fl&16 != 0]
		if fl&64 != 0 {
			kb = map[bool]string{false: "B vec4 k", true: "B vec4 n"}[fl&256 != 0]
		}
		if i > 0 && (ka != a || kb != b) {
			t.Fatalf("dispatches of %+v stage differently", g)
		}
		a, b = ka, kb
	}
	return []string{a, b}
}

// shadersOf lists the shaders of g's dispatches on d, "+"-separated where
// they differ.
func shadersOf(t *testing.T, d *Device, g gpu.Gemm) string {
	t.Helper()
	ds, err := gemmKernel(d, g)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, x := range ds {
		if i == 0 || x.shader != names[len(names)-1] {
			names = append(names, x.shader)
		}
	}
	return strings.Join(names, "+")
}

// TestCoopTile checks the block choice: the wide one where its grid fills
// a large GPU, the four-subgroup one for smaller products and where a
// test or BLIP_COOP_TILE asks for it.
func TestCoopTile(t *testing.T) {
	d := &Device{coop: "gemm_coop_khr", maxInvocations: 1024}
	d.info.SubgroupSize, d.info.SharedMemBytes = 32, 48<<10
	for _, c := range []struct {
		batch, m, n int
		mode        coopMode
		wide        bool
		bm          uint32
	}{
		{1, 18464, 3072, coopAuto, true, 128},  // ViT fc1, batch 32 at 384 px
		{1, 577, 768, coopAuto, false, 64},     // one image: 30 wide blocks
		{12, 577, 577, coopAuto, true, 128},    // a batch of products
		{1, 18464, 3072, coopSmall, false, 64}, // forced
		{1, 8, 8, coopWide, true, 128},
	} {
		d.coopMode = c.mode
		if tl := d.coopTile(c.batch, c.m, c.n); tl.wide != c.wide || tl.bm != c.bm || tl.bn != c.bm {
			t.Errorf("[%d] %dx%d, mode %d: wide %v, %dx%d; want wide %v, %dx%d", c.batch, c.m, c.n, c.mode, tl.wide, tl.bm, tl.bn, c.wide, c.bm, c.bm)
		}
	}
	// A device that reports its compute units: 30 wide blocks fill 24
	// (a small GPU), 72 do not fill 114.
	d.coopMode = coopAuto
	for _, c := range []struct {
		units, m, n int
		wide        bool
	}{{24, 577, 768, true}, {114, 1536, 768, false}, {114, 18464, 3072, true}} {
		d.info.ComputeUnits = c.units
		if tl := d.coopTile(1, c.m, c.n); tl.wide != c.wide {
			t.Errorf("%d compute units, %dx%d: wide %v, want %v", c.units, c.m, c.n, tl.wide, c.wide)
		}
	}
	d.info.ComputeUnits = 0
	d.coop, d.coopMode = "gemm_coop8_khr", coopWide
	if tl := d.coopTile(1, 8, 8); tl.bm != 64 || tl.subgroups() != 8 {
		t.Errorf("wide at FRAG 8: %dx%d in %d subgroups, want 64x64 in 8", tl.bm, tl.bn, tl.subgroups())
	}
	d.info.SubgroupSize = 256 // eight subgroups would exceed 1024 invocations
	if tl := d.coopTile(1, 8, 8); tl.wide {
		t.Error("wide block chosen past the device's workgroup size")
	}
	d.coop, d.info.SubgroupSize, d.info.SharedMemBytes = "gemm_coop_khr", 32, 32<<10
	if tl := d.coopTile(1, 8, 8); tl.wide {
		t.Errorf("wide block (%d bytes of shared memory) chosen on a device with 32 KiB", coopShared(tl))
	}
	// The shaders' declarations: 64x64 and 128x128 at FRAG 16, 64x64
	// twice at FRAG 8.
	for _, c := range []struct {
		frag, bm uint32
		wide     bool
		want     int
	}{{16, 64, false, 2*64*40*2 + 4*16*36*4}, {16, 128, true, 2*128*40*2 + 8*16*36*4},
		{8, 64, false, 2*64*40*2 + 4*8*36*4}, {8, 64, true, 2*64*40*2 + 8*8*20*4}} {
		tl := gemmTile{bm: c.bm, bn: c.bm, bk: 32, tm: c.frag, tn: c.frag, coop: true, wide: c.wide}
		if got := coopShared(tl); got != c.want {
			t.Errorf("FRAG %d, %dx%d: %d bytes of shared memory, want %d", c.frag, c.bm, c.bm, got, c.want)
		}
	}
}

// TestCoopShaders checks that every form of the tensor-core GEMM a device
// may get has its builds for each type of B and both blocks embedded, all
// distinct (only the KHR 8x8x8 form runs in CI).
func TestCoopShaders(t *testing.T) {
	for coop := range coopNames {
		d := &Device{coop: coop}
		seen := map[string]bool{}
		for _, bt := range []gpu.DType{gpu.F16, gpu.F32} {
			for _, wide := range []bool{false, true} {
				for _, along := range []bool{false, true} {
					name := d.coopShader(bt, wide, along)
					if _, err := shaders.SPIRV(name); err != nil {
						t.Errorf("%s with B in %s, wide %v, along %v: %v", coop, bt, wide, along, err)
					}
					if seen[name] {
						t.Errorf("%s: %s serves two builds", coop, name)
					}
					seen[name] = true
				}
			}
		}
		if d.coopShader(gpu.F16, false, false) != coop {
			t.Errorf("%s: the f16-B four-subgroup build is %s", coop, d.coopShader(gpu.F16, false, false))
		}
	}
}

// TestCoopChoice checks the shader choice by fragment shape, and that a
// device without RoundingModeRTE for 16-bit results still gets the
// tensor-core shaders, rounding in integer arithmetic (rounding.go).
func TestCoopChoice(t *testing.T) {
	if coopEnv == "0" {
		t.Skip("BLIP_COOPMAT=0")
	}
	var pi physInfo
	pi.info.Storage16, pi.info.SubgroupSize, pi.coopKHR = true, 32, 16
	pi.rte16 = true
	if s, ext, _ := coopChoice(pi); s != "gemm_coop_khr" || ext != "VK_KHR_cooperative_matrix" {
		t.Errorf("KHR 16x16x16 with RTE: %q %q", s, ext)
	}
	if d := (&Device{phys: pi}); d.roundsInShader() != coopSWRoundEnv {
		t.Errorf("a device with RTE rounds in integers")
	}
	pi.coopKHR = 8
	if s, _, _ := coopChoice(pi); s != "gemm_coop8_khr" {
		t.Errorf("KHR 8x8x8 with RTE: %q", s)
	}
	pi.rte16 = false
	if s, _, _ := coopChoice(pi); s != "gemm_coop8_khr" {
		t.Errorf("KHR 8x8x8 without RTE: %q", s)
	}
	if d := (&Device{phys: pi}); !d.roundsInShader() {
		t.Errorf("a device without RTE does not round in integers")
	}
}

// TestStripRTE checks the module surgery for devices without
// RoundingModeRTE for 16-bit results: every tensor-core module loses the
// mode, its capability and extension and nothing else; a module without
// them comes back unchanged.
func TestStripRTE(t *testing.T) {
	for _, name := range []string{"gemm_coop_khr", "gemm_coopw_bf32_khr", "gemm_coop8_khr", "attention_coop_khr", "attention_coop8_khr", "gemm_coop"} {
		code, err := shaders.SPIRV(name)
		if err != nil {
			t.Fatal(err)
		}
		count := func(c []uint32) (modes, caps, exts, insts int) {
			for i := 5; i < len(c); {
				n, op := int(c[i]>>16), c[i]&0xffff
				switch {
				case op == spvOpExecutionMode && c[i+2] == spvModeRoundingRTE:
					modes++
				case op == spvOpCapability && c[i+1] == spvCapRoundingRTE:
					caps++
				case op == spvOpExtension && spvString(c[i+1:i+n]) == spvFloatControlsName:
					exts++
				}
				insts++
				i += n
			}
			return
		}
		m, c, e, n := count(code)
		if m != 1 || c != 1 || e != 1 {
			t.Fatalf("%s: %d RTE modes, %d capabilities, %d extensions, want one each", name, m, c, e)
		}
		out := stripRTE(code)
		m2, c2, e2, n2 := count(out)
		if m2 != 0 || c2 != 0 || e2 != 0 || n2 != n-3 {
			t.Errorf("%s stripped: %d modes, %d capabilities, %d extensions, %d of %d instructions", name, m2, c2, e2, n2, n)
		}
		if &code[0] == &out[0] {
			t.Errorf("%s: stripped in place", name)
		}
	}
	plain, err := shaders.SPIRV("gemm")
	if err != nil {
		t.Fatal(err)
	}
	if out := stripRTE(plain); &out[0] != &plain[0] {
		t.Error("gemm (no RTE mode) was rewritten")
	}
}

// TestPickTileFill: the tiled GEMM's choice weighs how much of the device
// a grid fills, by the compute units the driver reports (else an H100's
// 132): 577x768 (one image's linear layer) takes 64x64 blocks to fill 132
// units, and the more efficient 128x64 where its 60 blocks fill 24.
func TestPickTileFill(t *testing.T) {
	if gemmTileEnv != "" {
		t.Skip("BLIP_GEMM_TILE forces a tile")
	}
	d := &Device{}
	d.info.Type, d.info.SharedMemBytes = gpu.Discrete, 48<<10
	for _, c := range []struct {
		units  int
		bm, bn uint32
	}{{0, 64, 64}, {132, 64, 64}, {24, 128, 64}} {
		d.info.ComputeUnits = c.units
		if tl := d.pickTile(1, 577, 768); tl.bm != c.bm || tl.bn != c.bn {
			t.Errorf("%d compute units: %dx%d blocks, want %dx%d", c.units, tl.bm, tl.bn, c.bm, c.bn)
		}
	}
}
