package vk

import (
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/paritytest"
)

// TestGemmRows runs every GEMM parity case that gemm_rows.comp takes (few
// rows, B stored (N, K)) on it, on any device: GPUs choose it for such
// products, CPU drivers only here. It must take the decoding shapes of the
// table (rows_*), its vec4 and scalar loads, and the f16 builds.
func TestGemmRows(t *testing.T) {
	d := openTest(t)
	d.rowsMode = rowsAlways
	ref := cpu.New()
	defer ref.Close()
	n, shaders := 0, map[string]int{}
	for _, c := range paritytest.Cases() {
		if c.Kernel != "gemm" {
			continue
		}
		g := sizedCall(c).(gpu.Gemm)
		ds, err := gemmKernel(d, g)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if len(ds) != 1 || !strings.HasPrefix(ds[0].shader, "gemm_rows") {
			if strings.Contains(c.Name, "/rows_") {
				t.Errorf("%s does not run on gemm_rows", c.Name)
			}
			continue
		}
		n++
		shaders[ds[0].shader+map[uint32]string{0: "", 1: " vec4"}[ds[0].spec[4]]]++
		t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, ds[0].shader) })
	}
	for _, s := range []string{"gemm_rows", "gemm_rows vec4", "gemm_rows_h", "gemm_rows_h vec4"} {
		if shaders[s] == 0 {
			t.Errorf("no case runs %s (%v)", s, shaders)
		}
	}
	if n < 40 {
		t.Errorf("only %d cases on gemm_rows", n)
	}
}

// TestGemmNormRows runs the gemm_norm parity cases with decoding's products
// on gemm_rows.comp, as GPUs run them: those of few rows as one dispatch of
// gemm_rows_ln (f32 and 16-bit B, vec4 and scalar loads), the rest as the
// gemm and layernorm dispatches.
func TestGemmNormRows(t *testing.T) {
	d := openTest(t)
	d.rowsMode = rowsAlways
	defer func() { d.rowsMode = rowsAuto }()
	ref := cpu.New()
	defer ref.Close()
	shaders := map[string]int{}
	for _, c := range paritytest.Cases() {
		if c.Kernel != "gemm_norm" {
			continue
		}
		ds, err := gemmNormKernel(d, sizedCall(c))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		on := ds[0].shader
		if len(ds) == 1 {
			shaders[on+map[uint32]string{0: "", 1: " vec4"}[ds[0].spec[4]]]++
		} else {
			on = "gemm + layernorm"
			shaders[on]++
		}
		two := strings.Contains(c.Name, "/rows_m35") || strings.Contains(c.Name, "/stats_")
		if two != (len(ds) > 1) || !two && !strings.HasPrefix(on, "gemm_rows_ln") {
			t.Errorf("%s runs on %s in %d dispatches", c.Name, on, len(ds))
		}
		t.Run(c.Name, func(t *testing.T) { checkF16Case(t, d, ref, c, on) })
	}
	for _, s := range []string{"gemm_rows_ln", "gemm_rows_ln vec4", "gemm_rows_ln_h vec4", "gemm + layernorm"} {
		if shaders[s] == 0 {
			t.Errorf("no case runs %s (%v)", s, shaders)
		}
	}
	// Blocks of rows normalise on their own (nflags bit 2) unless Y lies
	// over A, which other blocks may still read.
	const m, n = 24, 64
	var vs []gpu.View
	for _, l := range []int{m * n * 2, n * n, m * n, m * n, n, n} { // A (and room), B, C, R, gamma, beta
		b, err := d.Alloc(int64(4 * l))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Free(b)
		vs = append(vs, gpu.Whole(b, gpu.F32))
	}
	for _, over := range []bool{false, true} {
		y := vs[0].Slice(m*n, m*n)
		if over {
			y = vs[0].Slice(8*n, m*n)
		}
		gn := gpu.GemmNorm{G: gpu.Gemm{A: vs[0].Slice(0, m*n), B: vs[1], C: vs[2], M: m, N: n, K: n, TransB: true},
			L: gpu.LayerNorm{X: vs[2], R: vs[3], Gamma: vs[4], Beta: vs[5], Y: y, Rows: m, Cols: n, Eps: 1e-5}}
		ds, err := gemmNormKernel(d, gn)
		if err != nil {
			t.Fatal(err)
		}
		if perBlock := ds[0].push[21]&4 != 0; len(ds) != 1 || perBlock == over {
			t.Errorf("Y over A %v: %d dispatches, a counter per row block %v", over, len(ds), perBlock)
		}
	}
}
