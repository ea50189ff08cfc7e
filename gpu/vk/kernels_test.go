package vk

import (
	"math"
	"runtime"
	"testing"

	"blip/gpu"
	"blip/gpu/paritytest"
)

// TestShaderReference runs the parity table on the Vulkan device against
// the float64 references (select kernels with -run
// 'TestShaderReference/gemm'). Cases of kernels without a Vulkan dispatch
// yet are skipped.
func TestShaderReference(t *testing.T) {
	d := openTest(t)
	runReference(t, d)
}

// TestShaderSplitting runs the parity table with the device's binding and
// grid limits lowered, so that every kernel splits its calls into several
// dispatches over sub-views (the runtime checks every binding against the
// lowered maxBind too).
func TestShaderSplitting(t *testing.T) {
	d := openTest(t)
	d.maxBind = 4 << 20
	d.maxGroups = [3]uint32{64, 16, 2}
	runReference(t, d)
}

// TestGemmTiledShader runs the gemm cases through gemm.comp and gemm_h.comp,
// the GPU-shaped kernels a CPU driver otherwise never gets (gemm_cpu.comp
// replaces them there), with a small forced tile so that every shape
// spans several tiles and ragged edges. Long cases are left out: the tiled
// shader is slow on lavapipe.
func TestGemmTiledShader(t *testing.T) {
	d := openTest(t)
	old := gemmTileEnv
	gemmTileEnv = "32,32,8,4,4,1"
	t.Cleanup(func() { gemmTileEnv = old })
	var cases []paritytest.Case
	for _, c := range paritytest.Cases() {
		if c.Kernel == "gemm" && c.Tensors[2].Len < 20000 && c.Tensors[0].Len < 20000 {
			cases = append(cases, c)
		}
	}
	if len(cases) < 40 {
		t.Fatalf("only %d gemm cases selected", len(cases))
	}
	runReferenceOf(t, d, cases)
}

func runReference(t *testing.T, d *Device) { runReferenceOf(t, d, paritytest.Cases()) }

func runReferenceOf(t *testing.T, d *Device, cases []paritytest.Case) {
	// The float64 references (single-threaded, most of the time of these
	// tests) are computed ahead on every core: each case that runs starts
	// the next window of cases (so a -run filter wastes at most a window),
	// at most GOMAXPROCS at a time, while the device runs them in order.
	type prepared struct{ in, want [][]uint32 }
	window := 2 * runtime.GOMAXPROCS(0)
	ready := make([]chan prepared, len(cases))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	start := func(i int) {
		if i >= len(cases) || ready[i] != nil {
			return
		}
		ready[i] = make(chan prepared, 1)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := &cases[i]
			in := c.Inputs()
			ready[i] <- prepared{in, c.Expected(in)}
		}()
	}
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if _, ok := kernels[c.Kernel]; !ok {
				t.Skipf("%s: no Vulkan dispatch", c.Kernel)
			}
			for j := i; j <= i+window; j++ {
				start(j) // subtests run one after another: no race on ready
			}
			p := <-ready[i]
			bufs, err := c.Exec(d, p.in)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			r := c.Compare(p.want, bufs)
			t.Logf("worst error %.3g (tol %.3g)", r.Worst, c.Tol)
			for _, p := range r.Problems {
				t.Errorf("%s: %s", c.Name, p)
			}
			for _, m := range r.Bad {
				t.Errorf("%s: %s[%d] = %s, want %s (error %.3g > tol %.3g)", c.Name, m.Tensor, m.Index, m.Got, m.Want, m.Err, c.Tol)
			}
			if r.NBad > len(r.Bad) {
				t.Errorf("%s: %d elements outside the tolerance in all", c.Name, r.NBad)
			}
		})
	}
}

// Max propagates NaN like the CPU twin (the parity table has no NaN case
// for reduce).
func TestReduceMaxNaN(t *testing.T) {
	d := openTest(t)
	const rows, cols = 3, 1000
	b, err := d.Alloc(4 * (rows*cols + rows))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(b)
	all := gpu.Whole(b, gpu.F32)
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = float32(i % 97)
	}
	x[1*cols+517] = float32(math.NaN())
	x[2*cols+999] = float32(math.Inf(1))
	if err := d.Write(b, 0, f32bytes(x)); err != nil {
		t.Fatal(err)
	}
	if err := d.Do(gpu.Reduce{Op: gpu.ReduceMax, X: all.Slice(0, rows*cols), Y: all.Slice(rows*cols, rows), Rows: rows, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	y := readF32(t, d, all.Slice(rows*cols, rows))
	if y[0] != 96 || !math.IsNaN(float64(y[1])) || !math.IsInf(float64(y[2]), 1) {
		t.Fatalf("max = %v, want [96 NaN +Inf]", y)
	}
}
