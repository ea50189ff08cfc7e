package vk

import (
	"fmt"
	"os"

	"blip/gpu"
)

// gemm: on GPUs shaders/gemm.comp, a shared-memory and register tiled SGEMM;
// on CPU drivers (lavapipe) shaders/gemm_cpu.comp, which avoids shared
// memory and cross-lane operations (see its header). Tile shapes are
// specialization constants chosen here per device class and problem shape;
// each (tile, TransA, TransB, vec4 A, vec4 B[, vec4 C]) combination is its
// own pipeline. Calls whose views exceed a binding are split by batch, then
// by row blocks of M, then by column blocks of N; B must fit one binding per
// batch (or, stored (N, K), per column block).

// gemmTile is one tile configuration: for gemm.comp a BM x BN block per
// workgroup of (BM/TM)*(BN/TN) invocations, each computing TM x TN, K in
// steps of BK; for gemm_cpu.comp (cpu) TM x TN per invocation, bn/tn
// invocations side by side (bm = tm).
type gemmTile struct {
	bm, bn, bk, tm, tn uint32
	dbuf               uint32 // two shared buffers
	cpu                bool
	coop               bool // gemm_coop.glsl (gemm_coop.go)
	wide               bool // its eight-subgroup build
	eff                float64
}

func (t gemmTile) threads() uint32 { return (t.bm / t.tm) * (t.bn / t.tn) }

// valid reports whether gemm.comp can run t: TM, TN multiples of 4 dividing
// BM, BN; BK a multiple of 4; at most 1024 invocations.
func (t gemmTile) valid() bool {
	return t.tm > 0 && t.tn > 0 && t.tm%4 == 0 && t.tn%4 == 0 && t.bm%t.tm == 0 && t.bn%t.tn == 0 &&
		t.bk > 0 && t.bk%4 == 0 && t.threads() <= 1024 && t.dbuf <= 1
}

func (t gemmTile) sharedBytes() int {
	return int(t.dbuf+1) * int(t.bk) * int(t.bm/4+1+t.bn/4+1) * 16
}

// gemmTiles lists the configurations for d, best per-workgroup efficiency
// first (eff is a rough relative throughput per output element).
func (d *Device) gemmTiles() []gemmTile {
	// Tuning overrides: BLIP_GEMM_TILE=bm,bn,bk,tm,tn,dbuf forces one
	// gemm.comp tile (on any device), BLIP_GEMM_CPU_TILE=tm,tn,nt one
	// gemm_cpu.comp tile.
	if v := gemmTileEnv; v != "" {
		var t gemmTile
		if n, _ := fmt.Sscanf(v, "%d,%d,%d,%d,%d,%d", &t.bm, &t.bn, &t.bk, &t.tm, &t.tn, &t.dbuf); n == 6 && t.valid() {
			t.eff = 1
			return []gemmTile{t}
		}
	}
	if d.isCPU() {
		// lavapipe & co: gemm_cpu.comp, TM rows and TN columns per
		// invocation, a SIMD vector's worth of invocations per workgroup
		// side by side. Per four K steps an invocation spends about 60
		// cycles per row and per column on loads and 2 per FMA, hence eff;
		// the shorter tiles are for small M (decoding).
		tn, nt := uint32(16), uint32(max(d.info.SubgroupSize, 4))
		tms := []uint32{32, 16, 8, 4}
		if v := gemmCPUTileEnv; v != "" {
			var a, b, c uint32
			if n, _ := fmt.Sscanf(v, "%d,%d,%d", &a, &b, &c); n == 3 && a%4 == 0 && b%4 == 0 && a > 0 && b > 0 && c > 0 {
				tms, tn, nt = []uint32{a}, b, c
			}
		}
		var out []gemmTile
		for _, tm := range tms {
			cost := (60*float64(tm+tn) + 2*float64(tm*tn)) / float64(tm*tn)
			out = append(out, gemmTile{bm: tm, bn: nt * tn, tm: tm, tn: tn, cpu: true, eff: 1 / cost})
		}
		return out
	}
	// Measured on an H100 (Vulkan, driver 580; GFLOP/s at 4096^3 NN/NT,
	// 2048^3 NT, 1024^3 NN, 577x2304x768 NT): 128x64 (8x4) 27.0k/30.8k,
	// 32.9k, 23.3k, 17.1k; 128x128 (8x8) 25.6k/26.1k, 30.9k, 12.2k
	// (too few workgroups), 13.6k; 64x64 (4x4) 22.7k/21.7k, 24.6k (BK 8),
	// 22.3k, 17.5k; 128x32 (4x4) best on 577x768x768. eff is relative
	// per-SM throughput with the device full.
	tiles := []gemmTile{
		{bm: 128, bn: 64, bk: 16, tm: 8, tn: 4, dbuf: 1, eff: 1},
		{bm: 128, bn: 128, bk: 16, tm: 8, tn: 8, dbuf: 1, eff: 0.95},
		{bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, dbuf: 1, eff: 0.8},
		{bm: 128, bn: 32, bk: 16, tm: 4, tn: 4, dbuf: 1, eff: 0.75},
	}
	var ok []gemmTile
	for _, t := range tiles {
		for t.dbuf == 1 && t.sharedBytes() > d.info.SharedMemBytes {
			t.dbuf = 0
		}
		if t.sharedBytes() <= d.info.SharedMemBytes {
			ok = append(ok, t)
		}
	}
	if len(ok) == 0 {
		ok = []gemmTile{{bm: 32, bn: 32, bk: 8, tm: 4, tn: 4, eff: 0.5}}
	}
	return ok
}

// pickTile chooses the tile with the best estimated time: work rounded up to
// whole tiles, divided by the tile's efficiency and by how much of the device
// the grid can occupy.
func (d *Device) pickTile(batch, m, n int) gemmTile {
	tiles := d.gemmTiles()
	full := float64(d.fillGroups(132))
	if d.isCPU() {
		full = 16
	}
	best, bestCost := tiles[0], 0.0
	for i, t := range tiles {
		gm, gn := ceilDiv(int64(m), int64(t.bm)), ceilDiv(int64(n), int64(t.bn))
		groups := float64(gm * gn * int64(batch))
		work := float64(gm*int64(t.bm)) * float64(gn*int64(t.bn)) * float64(batch)
		occ := min(1, groups/full)
		cost := work / t.eff / occ
		if i == 0 || cost < bestCost {
			best, bestCost = t, cost
		}
	}
	return best
}

// fillGroups is how many workgroups it takes to fill the device, for
// choosing between tiles: its compute units where the driver reports them
// (gpu.DeviceInfo.ComputeUnits), else fallback (132: an H100's SMs, the
// GPU the tile choices were measured on).
func (d *Device) fillGroups(fallback int) int {
	if d.info.ComputeUnits > 0 {
		return d.info.ComputeUnits
	}
	return fallback
}

// gemmShape is a Gemm with every default resolved.
type gemmShape struct {
	A, B, C, Bias  gpu.View
	batch, m, n, k int64
	lda, ldb, ldc  int64
	sa, sb, sc     int64
	ta, tb         bool
	f16            bool // gpu.Gemm.F16
}

func (s *gemmShape) spanA(nb, mc int64) int64 {
	if s.ta {
		return (nb-1)*s.sa + (s.k-1)*s.lda + mc
	}
	return (nb-1)*s.sa + (mc-1)*s.lda + s.k
}

func (s *gemmShape) spanB(nb, nc int64) int64 {
	if s.tb {
		return (nb-1)*s.sb + (nc-1)*s.ldb + s.k
	}
	return (nb-1)*s.sb + (s.k-1)*s.ldb + nc
}

func (s *gemmShape) spanC(nb, mc, nc int64) int64 {
	return (nb-1)*s.sc + (mc-1)*s.ldc + nc
}

// Tuning overrides, read once (see gemmTiles).
var (
	gemmTileEnv    = os.Getenv("BLIP_GEMM_TILE")
	gemmCPUTileEnv = os.Getenv("BLIP_GEMM_CPU_TILE")
)

func init() {
	kernels["gemm"] = gemmKernel
}

// gemmShapeOf is g's operands and dimensions as the dispatches see them.
func gemmShapeOf(g gpu.Gemm) gemmShape {
	batch, lda, ldb, ldc, sa, sb, sc := g.Dims()
	return gemmShape{A: g.A, B: g.B, C: g.C, Bias: g.Bias,
		batch: int64(batch), m: int64(g.M), n: int64(g.N), k: int64(g.K),
		lda: int64(lda), ldb: int64(ldb), ldc: int64(ldc), sa: sa, sb: sb, sc: sc,
		ta: g.TransA, tb: g.TransB, f16: g.F16}
}

func gemmKernel(d *Device, c gpu.Call) ([]dispatch, error) {
	g := callAs[gpu.Gemm](c)
	if err := d.need16("gemm", g.A, g.B, g.C); err != nil {
		return nil, err
	}
	s := gemmShapeOf(g)
	batch := int(s.batch)
	alpha := g.Alpha
	if alpha == 0 {
		alpha = 1
	}
	if d.useRows(&s) {
		return []dispatch{d.rowsDispatch("gemm_rows", &s, alpha, g.Beta, g.Act)}, nil
	}
	if d.useCoop2(g) {
		if ds, ok, err := d.cm2Dispatches(&s, alpha, g.Beta, g.Act); ok || err != nil {
			return ds, err
		}
	}
	t := d.pickTile(batch, g.M, g.N)
	if d.useCoop(g) {
		t = d.coopTile(batch, g.M, g.N)
	}
	limit := d.limitElems()
	fits := func(nb, mc, nc int64) bool {
		return s.spanA(nb, mc) <= limit && s.spanB(nb, nc) <= limit && s.spanC(nb, mc, nc) <= limit
	}
	// Block sizes: batches, rows, columns per dispatch.
	mc := min(s.m, int64(d.maxGroups[1])*int64(t.bm))
	nc := min(s.n, int64(d.maxGroups[0])*int64(t.bn))
	nb := min(s.batch, int64(d.maxGroups[2]))
	for nb > 1 && !fits(nb, mc, nc) {
		nb = (nb + 1) / 2
	}
	shrink := func(v, unit int64) int64 {
		h := (v + 1) / 2
		if h > unit {
			h = h / unit * unit
		}
		return h
	}
	// Row blocks shrink the spans of C and of an untransposed A.
	for mc > 1 && (s.spanC(nb, mc, nc) > limit || !s.ta && s.spanA(nb, mc) > limit) {
		mc = shrink(mc, int64(t.bm))
	}
	for nc > 1 && !fits(nb, mc, nc) {
		nc = shrink(nc, int64(t.bn))
	}
	if !fits(nb, mc, nc) {
		return nil, fmt.Errorf("gemm: [%d] (%dx%d)@(%dx%d) with leading dimensions (%d, %d, %d) cannot be split into parts that fit the device's storage-buffer binding limit of %d bytes",
			batch, g.M, g.K, g.K, g.N, s.lda, s.ldb, s.ldc, d.maxBind)
	}

	var out []dispatch
	for b0 := int64(0); b0 < s.batch; b0 += nb {
		bn := min(nb, s.batch-b0)
		for m0 := int64(0); m0 < s.m; m0 += mc {
			mn := min(mc, s.m-m0)
			for n0 := int64(0); n0 < s.n; n0 += nc {
				nn := min(nc, s.n-n0)
				ao := b0 * s.sa
				if s.ta {
					ao += m0
				} else {
					ao += m0 * s.lda
				}
				bo := b0 * s.sb
				if s.tb {
					bo += n0 * s.ldb
				} else {
					bo += n0
				}
				av := s.A.Slice(ao, s.spanA(bn, mn))
				bv := s.B.Slice(bo, s.spanB(bn, nn))
				cv := s.C.Slice(b0*s.sc+m0*s.ldc+n0, s.spanC(bn, mn, nn))
				var bias gpu.View
				if s.Bias.Buf != nil {
					bias = s.Bias.Slice(n0, nn)
				}
				out = append(out, d.gemmDispatch(&s, t, av, bv, cv, bias, bn, mn, nn, alpha, g.Beta, g.Act))
			}
		}
	}
	return out, nil
}

// gemmPush is gemm_push.glsl's block for an m x n part of s on the given
// views (batch strides sa, sb, sc).
func (d *Device) gemmPush(s *gemmShape, av, bv, cv, bias gpu.View, m, n, sa, sb, sc int64, alpha, beta float32, act gpu.Act) []uint32 {
	flags := uint32(act) << 1
	if bias.Buf != nil {
		flags |= 1
	}
	return []uint32{uint32(m), uint32(n), uint32(s.k), uint32(s.lda), uint32(s.ldb), uint32(s.ldc),
		d.elemOff(av), d.elemOff(bv), d.elemOff(cv), offIfSet(d, bias),
		uint32(sa), uint32(sb), uint32(sc), f32bits(alpha), f32bits(beta), flags}
}

func (d *Device) gemmDispatch(s *gemmShape, t gemmTile, av, bv, cv, bias gpu.View, nb, m, n int64, alpha, beta float32, act gpu.Act) dispatch {
	sa, sb, sc := s.sa, s.sb, s.sc
	if nb == 1 {
		sa, sb, sc = 0, 0, 0
	}
	// vec4 loads need the contiguous dimension, the leading dimension, the
	// batch stride and the binding offset all multiples of 4.
	contA, contB := s.k, n // A (M, K), B (K, N)
	if s.ta {
		contA = m // A stored (K, M)
	}
	if s.tb {
		contB = s.k // B stored (N, K)
	}
	vecA := contA%4 == 0 && s.lda%4 == 0 && sa%4 == 0 && d.elemOff(av)%4 == 0
	vecB := contB%4 == 0 && s.ldb%4 == 0 && sb%4 == 0 && d.elemOff(bv)%4 == 0
	push := d.gemmPush(s, av, bv, cv, bias, m, n, sa, sb, sc, alpha, beta, act)
	groups := [3]uint32{uint32(ceilDiv(n, int64(t.bn))), uint32(ceilDiv(m, int64(t.bm))), uint32(nb)}
	if t.coop {
		return d.coopDispatch(s, t, av, bv, cv, bias, push, groups)
	}
	// F16 is a specialization constant (A and an f32 B rounded to f16 as
	// they are loaded; folded away when 0). 16-bit B runs the _h build of
	// the same shader, B's type its last specialization constant.
	var shader string
	var spec []uint32
	if t.cpu {
		vecC := s.ldc%4 == 0 && sc%4 == 0 && d.elemOff(cv)%4 == 0 && (bias.Buf == nil || d.elemOff(bias)%4 == 0)
		shader = "gemm_cpu"
		spec = []uint32{t.bn / t.tn, t.tm, t.tn, b2u(s.ta), b2u(s.tb), b2u(vecA), b2u(vecB), b2u(vecC), b2u(s.f16)}
	} else {
		shader = "gemm"
		spec = []uint32{t.threads(), t.bm, t.bn, t.bk, t.tm, t.tn, b2u(s.ta), b2u(s.tb), b2u(vecA), b2u(vecB), t.dbuf, b2u(s.f16)}
	}
	return gemmDispatchB(shader, spec, av, bv, cv, bias, push, groups)
}

// gemmDispatchB is a dispatch of a gemm shader, its _h build for a 16-bit
// B, A or C: B's type the next specialization constant, and where A or C
// is 16-bit (gemm.comp and gemm_cpu.comp only: gemm_ac.glsl) A's and C's
// after it.
func gemmDispatchB(shader string, spec []uint32, av, bv, cv, bias gpu.View, push []uint32, groups [3]uint32) dispatch {
	act16 := av.DType != gpu.F32 || cv.DType != gpu.F32
	if bv.DType != gpu.F32 || act16 {
		shader += "_h"
		spec = append(spec, dtCode(bv.DType))
	}
	if act16 {
		spec = append(spec, dtCode(av.DType), dtCode(cv.DType))
	}
	return dispatch{
		shader: shader,
		spec:   spec,
		binds:  []binding{rd(av), rd(bv), wr(cv), rd(bias)},
		push:   push,
		groups: groups,
	}
}
