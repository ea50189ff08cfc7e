package vk

import (
	"os"
	"slices"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// openCM2 opens the test device with gemm_cm2 asked for (BLIP_COOPMAT2=1
// for the length of the test).
func openCM2(t *testing.T) *Device {
	t.Helper()
	old := coop2Env
	coop2Env = "1"
	t.Cleanup(func() { coop2Env = old })
	return openTest(t)
}

// TestGemmCoop2 runs the F16 gemm cases of the parity table (gemm/f16_*:
// exact ties, ragged edges, both transpositions, batches, bias, GELU,
// beta, B in f32 and in f16) through gemm_cm2 in each block the device
// lists, against the CPU backend at the cases' tolerances: the casts to
// f16 round as the reference does, so the exact cases must match bit for
// bit. The cases with a tensor base off 16 bytes (5 of 53) must not take
// it (cm2Aligned). It runs where the device offers VK_NV_cooperative_matrix2 (an
// NVIDIA GPU: gpu/bench/gpu_run.sh's cm2 stage); elsewhere it is skipped,
// unless BLIP_REQUIRE_COOPMAT2=1 asks for it.
func TestGemmCoop2(t *testing.T) {
	d := openCM2(t)
	if d.cm2 == nil {
		msg := "no gemm_cm2 (needs VK_NV_cooperative_matrix2 with workgroup scope, flexible dimensions, reductions, conversions, per-element operations and tensor addressing; the KHR 16x16x16 tensor-core GEMM; RoundingModeRTE for f16; Vulkan 1.3)"
		if os.Getenv("BLIP_REQUIRE_COOPMAT2") == "1" {
			t.Fatalf("%s: BLIP_REQUIRE_COOPMAT2=1 but %s (extension listed: %v)", d.info.Name, msg, d.info.CoopMat2NV)
		}
		t.Skipf("%s: %s", d.info.Name, msg)
	}
	t.Logf("%s: workgroups up to %d, dimensions up to %d, granularities %v", d.info.Name, d.cm2.maxWG, d.cm2.maxDim, d.cm2.gran)
	d.rowsMode = rowsNever // the few-row cases too
	defer func() { d.cm2Force = cm2Tile{} }()
	ref := cpu.New()
	defer ref.Close()
	tiles := 0
	for _, tl := range cm2Tiles {
		if !d.cm2.fits(tl) {
			t.Logf("block %s not listed", tl)
			continue
		}
		tiles++
		d.cm2Force = tl
		n := 0
		for _, c := range paritytest.Cases() {
			if c.Kernel != "gemm" || !strings.HasPrefix(c.Name, "gemm/f16_") {
				continue
			}
			g := sizedCall(c).(gpu.Gemm)
			got := shadersOf(t, d, g)
			if g.A.DType != gpu.F32 || g.C.DType != gpu.F32 {
				// 16-bit activations: the KHR GEMM's (gemm_cm2 takes f32
				// activations, useCoop2).
				if strings.Contains(got, "gemm_cm2") {
					t.Fatalf("%s (A %s, C %s) ran on %s", c.Name, g.A.DType, g.C.DType, got)
				}
				continue
			}
			if !gemmAlignedForCM2(g) {
				// Bases off 16 bytes: the KHR GEMM's (TestGemmCoop).
				if strings.Contains(got, "gemm_cm2") {
					t.Fatalf("%s ran on %s with a tensor base off 16 bytes", c.Name, got)
				}
				continue
			}
			if got != "cast+gemm_cm2" {
				t.Fatalf("%s ran on %s, want cast+gemm_cm2", c.Name, got)
			}
			n++
			t.Run(tl.String()+"/"+c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, "gemm_cm2 "+tl.String()) })
		}
		if n < 20 {
			t.Fatalf("only %d F16 gemm cases on gemm_cm2", n)
		}
	}
	if tiles == 0 {
		t.Fatalf("%s lists none of the blocks %v", d.info.Name, cm2Tiles)
	}
}

// gemmAlignedForCM2 is cm2Aligned for a call.
func gemmAlignedForCM2(g gpu.Gemm) bool {
	batch, _, _, _, sa, sb, sc := g.Dims()
	s := gemmShape{batch: int64(batch), sa: sa, sb: sb, sc: sc}
	return cm2Aligned(&s, g.B, g.C)
}

// TestCM2Lowering checks gemm_cm2's dispatches without running them (any
// Vulkan device; lavapipe has no cooperative matrix 2): the casts cover
// exactly the f32 operands' spans, the product reads the f16 copies with
// the call's layout, and calls past a binding or the grid go back to the
// other paths.
func TestCM2Lowering(t *testing.T) {
	d := openTest(t)
	defer func(c *cm2Caps) { d.cm2 = c }(d.cm2)
	d.cm2 = &cm2Caps{maxWG: 256, maxDim: 256, gran: map[uint32][3]uint32{128: {16, 16, 16}, 256: {16, 16, 16}}}
	d.rowsMode = rowsNever
	defer func() { d.rowsMode = rowsAuto }()
	mk := func(n int64, dt gpu.DType) gpu.View { return gpu.View{Buf: nil, Len: n, DType: dt} }
	for _, c := range []struct {
		name  string
		g     gpu.Gemm
		casts int // f32 operands cast
	}{
		{"forward, f16 weights", gpu.Gemm{A: mk(577*768, gpu.F32), B: mk(3072*768, gpu.F16), C: mk(577*3072, gpu.F32),
			Bias: mk(3072, gpu.F32), M: 577, N: 3072, K: 768, TransB: true, F16: true, Act: gpu.ActGELU}, 1},
		{"weight gradient, B in f32", gpu.Gemm{A: mk(577*768, gpu.F32), B: mk(577*3072, gpu.F32), C: mk(768*3072, gpu.F32),
			M: 768, N: 3072, K: 577, TransA: true, F16: true, Beta: 1}, 2},
		{"batched heads", gpu.Gemm{A: mk(12*197*64, gpu.F32), B: mk(12*197*64, gpu.F32), C: mk(12*197*200, gpu.F32),
			M: 197, N: 197, K: 64, Batch: 12, StrideA: 197 * 64, StrideB: 197 * 64, LdC: 200, StrideC: 197 * 200, TransB: true, F16: true}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds, err := gemmKernel(d, c.g)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != c.casts+1 {
				t.Fatalf("%d dispatches, want %d casts and the product", len(ds), c.casts)
			}
			batch, lda, ldb, ldc, sa, sb, sc := c.g.Dims()
			s := gemmShape{batch: int64(batch), m: int64(c.g.M), n: int64(c.g.N), k: int64(c.g.K),
				lda: int64(lda), ldb: int64(ldb), ldc: int64(ldc), sa: sa, sb: sb, sc: sc, ta: c.g.TransA, tb: c.g.TransB}
			spans := []int64{s.spanA(s.batch, s.m), s.spanB(s.batch, s.n)}
			for i, x := range ds[:c.casts] {
				if x.shader != "cast" || x.push[0] != uint32(spans[i]) {
					t.Errorf("dispatch %d: %s of %d elements, want a cast of %d", i, x.shader, x.push[0], spans[i])
				}
				if y := x.binds[1].v; y.DType != gpu.F16 || y.Len != spans[i] {
					t.Errorf("cast %d writes %s, want %d f16 values", i, y, spans[i])
				}
			}
			p := ds[c.casts]
			if p.shader != "gemm_cm2" {
				t.Fatalf("product on %s", p.shader)
			}
			tl, _ := d.cm2Tile(s.batch, s.m, s.n)
			want := []uint32{tl.wg, tl.bm, tl.bn, tl.bk, b2u(c.g.TransA), b2u(c.g.TransB)}
			if !slices.Equal(p.spec, want) {
				t.Errorf("spec %v, want %v", p.spec, want)
			}
			if a, b := p.binds[0].v, p.binds[1].v; a.DType != gpu.F16 || b.DType != gpu.F16 {
				t.Errorf("product reads A %s and B %s, want both f16", a.DType, b.DType)
			}
			if p.binds[1].v.Buf == nil && c.g.B.DType == gpu.F32 {
				t.Error("B in f32 not read from its f16 copy")
			}
			if c.casts == 2 && p.binds[0].v.Buf == p.binds[1].v.Buf && p.binds[1].v.Off < p.binds[0].v.Off+spans[0] {
				t.Errorf("B's copy at %d overlaps A's (%d values)", p.binds[1].v.Off, spans[0])
			}
			wantGroups := [3]uint32{uint32(ceilDiv(s.n, int64(tl.bn))), uint32(ceilDiv(s.m, int64(tl.bm))), uint32(batch)}
			if p.groups != wantGroups {
				t.Errorf("groups %v, want %v", p.groups, wantGroups)
			}
			// M, N, K, lda, ldb, ldc as the call's; batch strides only
			// where there are batches.
			wantPush := []uint32{uint32(c.g.M), uint32(c.g.N), uint32(c.g.K), uint32(lda), uint32(ldb), uint32(ldc)}
			if !slices.Equal(p.push[:6], wantPush) {
				t.Errorf("push %v, want %v first", p.push[:6], wantPush)
			}
			if strides := p.push[10:13]; batch == 1 && (strides[0]|strides[1]|strides[2]) != 0 ||
				batch > 1 && (strides[0] != uint32(sa) || strides[1] != uint32(sb) || strides[2] != uint32(sc)) {
				t.Errorf("batch strides %v for %d batches (%d, %d, %d)", strides, batch, sa, sb, sc)
			}
		})
	}
	// C off 16 bytes, an f16 B off 16 bytes, a batch stride of A off 16
	// bytes in f16: gemm_coop's (or the tiled shader's).
	off := func(v gpu.View, n int64) gpu.View { v.Off += n; v.Len -= n; return v }
	fwd := gpu.Gemm{A: mk(64*64, gpu.F32), B: mk(64*64+8, gpu.F16), C: mk(64*64+8, gpu.F32), M: 64, N: 64, K: 64, TransB: true, F16: true}
	for name, g := range map[string]gpu.Gemm{
		"C":        func() gpu.Gemm { g := fwd; g.C = off(g.C, 2); return g }(),
		"B in f16": func() gpu.Gemm { g := fwd; g.B = off(g.B, 4); return g }(),
		"strides": {A: mk(4*68*64, gpu.F32), B: mk(64*64, gpu.F16), C: mk(4*64*64, gpu.F32), M: 64, N: 64, K: 64, TransB: true, F16: true,
			Batch: 4, StrideA: 68*64 + 4, StrideC: 64 * 64},
	} {
		if got := shadersOf(t, d, g); strings.Contains(got, "gemm_cm2") {
			t.Errorf("%s off 16 bytes: ran on %s", name, got)
		}
		if gemmAlignedForCM2(g) {
			t.Errorf("%s off 16 bytes: cm2Aligned", name)
		}
	}
	if !gemmAlignedForCM2(fwd) || shadersOf(t, d, fwd) != "cast+gemm_cm2" {
		t.Errorf("aligned forward product not on gemm_cm2: %s", shadersOf(t, d, fwd))
	}
	// Past the grid: more batches than a dispatch takes go to gemm_coop (or
	// the tiled shader), which splits them.
	big := &gemmShape{A: mk(4*16, gpu.F32), B: mk(16*4, gpu.F16), C: mk(4*4, gpu.F32),
		batch: int64(d.maxGroups[2]) + 1, m: 4, n: 4, k: 16, lda: 16, ldb: 4, ldc: 4}
	if ds, ok, err := d.cm2Dispatches(big, 1, 0, 0); ok || err != nil || ds != nil {
		t.Errorf("%d batches: ok %v, err %v, %d dispatches; want gemm_cm2 to decline", big.batch, ok, err, len(ds))
	}
}

// TestCM2Tile checks the block choice: the largest listed block whose grid
// fills the device, the smallest listed one otherwise, a forced one, and
// the granularity and size limits.
func TestCM2Tile(t *testing.T) {
	d := &Device{}
	d.cm2 = &cm2Caps{maxWG: 256, maxDim: 256, gran: map[uint32][3]uint32{128: {16, 16, 16}, 256: {16, 16, 16}}}
	d.info.ComputeUnits = 132
	for _, c := range []struct {
		batch, m, n int64
		want        cm2Tile
	}{
		{1, 18464, 3072, cm2Tiles[0]}, // ViT fc1 at batch 32: 1740 large blocks
		{1, 4096, 4096, cm2Tiles[0]},
		{1, 577, 3072, cm2Tiles[2]},  // one image: 60 large, 120 medium blocks
		{1, 1536, 1536, cm2Tiles[1]}, // 72 large, 144 medium blocks
		{4, 577, 577, cm2Tiles[2]},
		{1, 8, 8, cm2Tiles[2]},
	} {
		got, err := d.cm2Tile(c.batch, c.m, c.n)
		if err != nil || got != c.want {
			t.Errorf("[%d] %dx%d: %s (%v), want %s", c.batch, c.m, c.n, got, err, c.want)
		}
	}
	// Granularities and limits rule blocks out.
	for _, c := range []struct {
		caps cm2Caps
		tl   cm2Tile
		fits bool
	}{
		{cm2Caps{256, 256, map[uint32][3]uint32{256: {16, 16, 16}}}, cm2Tile{256, 128, 256, 64}, true},
		{cm2Caps{256, 256, map[uint32][3]uint32{256: {16, 16, 16}}}, cm2Tile{128, 64, 64, 64}, false}, // no 128-invocation entry
		{cm2Caps{128, 256, map[uint32][3]uint32{256: {16, 16, 16}}}, cm2Tile{256, 128, 256, 64}, false},
		{cm2Caps{256, 128, map[uint32][3]uint32{256: {16, 16, 16}}}, cm2Tile{256, 128, 256, 64}, false},
		{cm2Caps{256, 256, map[uint32][3]uint32{256: {16, 16, 48}}}, cm2Tile{256, 128, 128, 64}, false},
		{cm2Caps{256, 256, map[uint32][3]uint32{256: {16, 32, 16}}}, cm2Tile{256, 128, 128, 64}, true},
	} {
		if got := c.caps.fits(c.tl); got != c.fits {
			t.Errorf("%+v, block %s: fits %v, want %v", c.caps, c.tl, got, c.fits)
		}
	}
	d.cm2 = &cm2Caps{256, 256, map[uint32][3]uint32{256: {16, 16, 16}}}
	if got, _ := d.cm2Tile(1, 8, 8); got != cm2Tiles[1] {
		t.Errorf("without 128-invocation blocks: %s, want %s", got, cm2Tiles[1])
	}
	d.cm2 = &cm2Caps{256, 256, map[uint32][3]uint32{64: {16, 16, 16}}}
	if _, err := d.cm2Tile(1, 8, 8); err == nil {
		t.Error("no listed block, no error")
	}
	if d.cm2.anyTile() {
		t.Error("anyTile with only 64-invocation granularities")
	}
	if c := (&cm2Caps{256, 256, map[uint32][3]uint32{128: {16, 16, 16}}}); !c.anyTile() {
		t.Error("no block found with 128-invocation granularities of 16")
	}
	for _, s := range []string{"256x128x256x64", "128x64x64x64"} {
		if tl, err := parseCM2Tile(s); err != nil || tl.String() != s {
			t.Errorf("parse %s: %s, %v", s, tl, err)
		}
	}
	for _, s := range []string{"256x128x256", "256x0x256x64", "big"} {
		if _, err := parseCM2Tile(s); err == nil {
			t.Errorf("parse %q: no error", s)
		}
	}
}

// TestAttentionCoop2 runs the F16 attention cases of the parity table
// (attention/f16_*: masks, causal shapes, LSE, odd D, strides and offsets,
// fused QKV views) on attention_cm2 against the CPU backend at the cases'
// tolerances, where the device offers cooperative matrix 2 (as
// TestGemmCoop2): 16 cases. Decoding's few queries (the split kernel) and
// tensors off 16 bytes (attnCM2Aligned: the KHR kernel) are left to
// TestAttentionCoop.
func TestAttentionCoop2(t *testing.T) {
	d := openCM2(t)
	if d.cm2 == nil {
		if os.Getenv("BLIP_REQUIRE_COOPMAT2") == "1" {
			t.Fatalf("%s: BLIP_REQUIRE_COOPMAT2=1 but no cooperative matrix 2", d.info.Name)
		}
		t.Skipf("%s: no cooperative matrix 2", d.info.Name)
	}
	ref := cpu.New()
	defer ref.Close()
	n := 0
	for _, c := range paritytest.Cases() {
		if c.Kernel != "attention" || !strings.HasPrefix(c.Name, "attention/f16_") {
			continue
		}
		a := sizedCall(c).(gpu.Attention)
		if useSplit(a.AttentionShape) || a.D > attnCM2MaxD || !attnCM2Aligned(a) || a.Q.DType != gpu.F32 || a.O.DType != gpu.F32 {
			continue // the split or the KHR kernel's (TestAttentionCoop; 16-bit activations too)
		}
		if !d.useAttnCM2(a) {
			t.Fatalf("%s (D %d) does not run on attention_cm2", c.Name, a.D)
		}
		n++
		t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, "attention_cm2") })
	}
	if n < 8 {
		t.Fatalf("only %d F16 attention cases ran on attention_cm2", n)
	}
}

// TestAttnCM2Lowering checks attention_cm2's dispatches without running
// them (any Vulkan device): a fused QKV tensor is cast once and Q, K, V
// read from the copy at their offsets; separate tensors are cast each;
// D is padded to the granularity; the push block is attention.comp's.
func TestAttnCM2Lowering(t *testing.T) {
	d := openTest(t)
	defer func(c *cm2Caps) { d.cm2 = c }(d.cm2)
	d.cm2 = &cm2Caps{maxWG: 256, maxDim: 256, gran: map[uint32][3]uint32{128: {16, 16, 16}, 256: {16, 16, 16}}}
	buf := func(n int64) gpu.Buffer {
		b, err := d.Alloc(n * 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Free(b) })
		return b
	}
	const B, T, H, D = 2, 197, 12, 64
	qkv := buf(B * T * 3 * H * D)
	o := buf(B * T * H * D)
	view := func(b gpu.Buffer, off, n int64) gpu.View { return gpu.View{Buf: b, Off: off, Len: n, DType: gpu.F32} }
	fused := gpu.Attention{
		Q: view(qkv, 0, B*T*3*H*D), K: view(qkv, H*D, B*T*3*H*D-H*D), V: view(qkv, 2*H*D, B*T*3*H*D-2*H*D), O: view(o, 0, B*T*H*D),
		AttentionShape: gpu.AttentionShape{B: B, H: H, Tq: T, Tk: T, D: D, QTok: 3 * H * D, KTok: 3 * H * D, VTok: 3 * H * D},
		F16:            true,
	}
	ds, err := attentionKernel(d, fused)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 2 || ds[0].shader != "cast" || ds[1].shader != "attention_cm2" {
		t.Fatalf("fused QKV: dispatches %v, want one cast then attention_cm2", shaderNames(ds))
	}
	if got, want := ds[0].push[0], uint32(B*T*3*H*D); got != want {
		t.Errorf("fused QKV: cast of %d elements, want the union %d", got, want)
	}
	q, k, v := ds[1].binds[0].v, ds[1].binds[1].v, ds[1].binds[2].v
	if q.DType != gpu.F16 || q.Buf != k.Buf || k.Buf != v.Buf || k.Off-q.Off != H*D || v.Off-q.Off != 2*H*D {
		t.Errorf("fused QKV: the product reads Q %s, K %s, V %s; want one f16 copy at offsets 0, %d, %d", q, k, v, H*D, 2*H*D)
	}
	if want := []uint32{128, 64, 64, 64}; !slices.Equal(ds[1].spec, want) {
		t.Errorf("spec %v, want %v", ds[1].spec, want)
	}
	if got := ds[1].groups; got != [3]uint32{4, H, B} {
		t.Errorf("groups %v, want [4 %d %d]", got, H, B)
	}
	// Separate tensors, head dimension 40 (padded to 48), a causal mask.
	const D2 = 40
	sq, sk, sv, so := buf(B*T*H*D2), buf(B*T*H*D2), buf(B*T*H*D2), buf(B*T*H*D2)
	sep := gpu.Attention{Q: view(sq, 0, B*T*H*D2), K: view(sk, 0, B*T*H*D2), V: view(sv, 0, B*T*H*D2), O: view(so, 0, B*T*H*D2),
		AttentionShape: gpu.AttentionShape{B: B, H: H, Tq: T, Tk: T, D: D2, Causal: true}, F16: true}
	ds, err = attentionKernel(d, sep)
	if err != nil {
		t.Fatal(err)
	}
	if names := shaderNames(ds); len(ds) != 4 || names[3] != "attention_cm2" {
		t.Fatalf("separate Q, K, V: dispatches %v, want three casts then attention_cm2", names)
	}
	for i := range 3 {
		if ds[i].push[0] != B*T*H*D2 {
			t.Errorf("cast %d of %d elements, want %d", i, ds[i].push[0], B*T*H*D2)
		}
	}
	if ds[3].spec[3] != 48 || ds[3].push[19]&2 == 0 {
		t.Errorf("spec %v (want D 48), flags %#x (want causal)", ds[3].spec, ds[3].push[19])
	}
	// A forced block: malformed, or not listed, is an error naming the
	// variable; a listed one runs.
	defer func(e string) { attnCM2TileEnv = e }(attnCM2TileEnv)
	for env, want := range map[string]string{"128x64": "want WGxBRxBC", "64x64x64": "does not list", "256x128x64": ""} {
		attnCM2TileEnv = env
		ds, err := attentionKernel(d, fused)
		switch {
		case want == "" && (err != nil || ds[len(ds)-1].spec[0] != 256 || ds[len(ds)-1].spec[1] != 128):
			t.Errorf("BLIP_ATTN_CM2_TILE=%s: %v, %v", env, err, shaderNames(ds))
		case want != "" && (err == nil || !strings.Contains(err.Error(), "BLIP_ATTN_CM2_TILE") || !strings.Contains(err.Error(), want)):
			t.Errorf("BLIP_ATTN_CM2_TILE=%s: error %v, want one saying %q", env, err, want)
		}
	}
	attnCM2TileEnv = ""
	// Past its reach: D > 128, bases off 16 bytes, decoding's few queries.
	odd := fused
	odd.D, odd.H = 60, 1
	if d.useAttnCM2(odd) {
		t.Error("D = 60 (heads 120 bytes apart in f16) on attention_cm2")
	}
	shifted := sep
	shifted.O = view(so, 2, B*T*H*D2-2)
	if d.useAttnCM2(shifted) {
		t.Error("O off 16 bytes on attention_cm2")
	}
	big := sep
	big.D = 160
	if d.useAttnCM2(big) {
		t.Error("D = 160 on attention_cm2")
	}
	few := sep
	few.Tq = 1
	if ds, _ := attentionKernel(d, few); !strings.HasPrefix(ds[len(ds)-1].shader, "attention_split") {
		t.Errorf("one query on %s, want attention_split", ds[len(ds)-1].shader)
	}
}

func shaderNames(ds []dispatch) []string {
	var out []string
	for _, x := range ds {
		out = append(out, x.shader)
	}
	return out
}
