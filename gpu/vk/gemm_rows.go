package vk

import (
	"os"

	"blip/gpu"
)

// Products with few rows (decoding: a row per sequence and beam) against a
// weight stored (N, K) run on shaders/gemm_rows.comp, which spreads the
// columns over many workgroups instead of the tiled kernel's few blocks of
// mostly empty rows (see the shader's header for the H100 figure).

// gemmRows is gemm_rows.comp's configuration: rowsThreads invocations per
// workgroup in teams of rowsTeam, each team rowsCols columns of up to
// rowsM rows.
const (
	rowsThreads = 128
	rowsTeam    = 32
	rowsCols    = 2
	rowsM       = 8
	rowsMaxM    = 32 // most rows that take this path (a workgroup row per rowsM)
)

// BLIP_GEMM_ROWS=0 turns the path off (for comparisons); =1 takes it on
// CPU drivers too (make test runs the golden captions so on lavapipe).
var (
	rowsOff = os.Getenv("BLIP_GEMM_ROWS") == "0"
	rowsOn  = os.Getenv("BLIP_GEMM_ROWS") == "1"
)

// rowsMode lets tests run gemm_rows.comp on CPU drivers, which take
// gemm_cpu.comp's short tiles instead (rowsAlways), or keep it from
// taking the few-row cases of another kernel's test (rowsNever).
type rowsMode uint8

const (
	rowsAuto rowsMode = iota
	rowsAlways
	rowsNever
)

// useRows reports whether the call s runs on gemm_rows.comp: few rows, B
// stored (N, K), A not transposed, and the whole call one dispatch.
func (d *Device) useRows(s *gemmShape) bool {
	switch {
	case d.rowsMode == rowsNever, rowsOff && d.rowsMode != rowsAlways:
		return false
	case d.isCPU() && d.rowsMode != rowsAlways && !rowsOn:
		return false
	}
	if s.ta || !s.tb || s.m > rowsMaxM || s.batch > int64(d.maxGroups[2]) || s.A.DType != gpu.F32 || s.C.DType != gpu.F32 {
		return false
	}
	if ceilDiv(s.n, rowsThreads/rowsTeam*rowsCols) > int64(d.maxGroups[1]) {
		return false
	}
	limit := d.limitElems()
	return s.spanA(s.batch, s.m) <= limit && s.spanB(s.batch, s.n) <= limit && s.spanC(s.batch, s.m, s.n) <= limit
}

// rowsLaunch is gemm_rows.glsl's specialization and grid for cols output
// columns of s (more than s.n where several products sit side by side).
func rowsLaunch(s *gemmShape, cols int64, vec bool) ([]uint32, [3]uint32) {
	spec := []uint32{rowsThreads, rowsTeam, rowsCols, rowsM, b2u(vec), b2u(s.f16)}
	return spec, [3]uint32{uint32(ceilDiv(s.m, rowsM)), uint32(ceilDiv(cols, rowsThreads/rowsTeam*rowsCols)), uint32(s.batch)}
}

// rowsDispatch is the whole call as one dispatch of gemm_rows.glsl's build
// shader (gemm_rows, or gemm_rows_ln with the LayerNorm's bindings added).
func (d *Device) rowsDispatch(shader string, s *gemmShape, alpha, beta float32, act gpu.Act) dispatch {
	av := s.A.Slice(0, s.spanA(s.batch, s.m))
	bv := s.B.Slice(0, s.spanB(s.batch, s.n))
	cv := s.C.Slice(0, s.spanC(s.batch, s.m, s.n))
	var bias gpu.View
	if s.Bias.Buf != nil {
		bias = s.Bias.Slice(0, s.n)
	}
	sa, sb, sc := s.sa, s.sb, s.sc
	if s.batch == 1 {
		sa, sb, sc = 0, 0, 0
	}
	// vec4 loads along k: K, the leading dimensions, the batch strides and
	// the binding offsets of A and B all multiples of 4.
	vec := s.k%4 == 0 && s.lda%4 == 0 && s.ldb%4 == 0 && sa%4 == 0 && sb%4 == 0 &&
		d.elemOff(av)%4 == 0 && d.elemOff(bv)%4 == 0
	push := d.gemmPush(s, av, bv, cv, bias, s.m, s.n, sa, sb, sc, alpha, beta, act)
	spec, groups := rowsLaunch(s, s.n, vec)
	return gemmDispatchB(shader, spec, av, bv, cv, bias, push, groups)
}
