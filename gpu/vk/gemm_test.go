package vk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"blip/gpu"
)

// TestGemmPerf times gemm on the Vulkan device (first call: pipeline
// creation; then GFLOP/s). Opt-in: BLIP_GEMM_PERF=1; BLIP_GEMM_SIZES lists
// shapes as MxNxK[:tt] (tt: TransA, TransB as 0/1), default 1024x1024x1024.
func TestGemmPerf(t *testing.T) {
	if os.Getenv("BLIP_GEMM_PERF") != "1" {
		t.Skip("set BLIP_GEMM_PERF=1")
	}
	d := openTest(t)
	t.Logf("device: %s (%v), subgroup %d, shared %d", d.info.Name, d.info.Type, d.info.SubgroupSize, d.info.SharedMemBytes)
	sizes := os.Getenv("BLIP_GEMM_SIZES")
	if sizes == "" {
		sizes = "1024x1024x1024:00,1024x1024x1024:01"
	}
	for _, spec := range strings.Split(sizes, ",") {
		shape, tr, _ := strings.Cut(spec, ":")
		dims := strings.Split(shape, "x")
		m, _ := strconv.Atoi(dims[0])
		n, _ := strconv.Atoi(dims[1])
		k, _ := strconv.Atoi(dims[2])
		ta, tb := len(tr) > 0 && tr[0] == '1', len(tr) > 1 && tr[1] == '1'
		t.Run(spec, func(t *testing.T) { gemmPerf(t, d, m, n, k, ta, tb) })
	}
}

func gemmPerf(t *testing.T, d *Device, m, n, k int, ta, tb bool) {
	alloc := func(n int) gpu.View {
		b, err := d.Alloc(int64(4 * n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Free(b) })
		x := make([]float32, n)
		for i := range x {
			x[i] = rand.Float32() - 0.5
		}
		if err := d.Write(b, 0, f32bytes(x)); err != nil {
			t.Fatal(err)
		}
		return gpu.Whole(b, gpu.F32)
	}
	a, b, c := alloc(m*k), alloc(k*n), alloc(m*n)
	g := gpu.Gemm{A: a, B: b, C: c, M: m, N: n, K: k, TransA: ta, TransB: tb}
	start := time.Now()
	if err := d.Do(g); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	// check a few entries
	av, bv, cv := readF32(t, d, a), readF32(t, d, b), readF32(t, d, c)
	for s := 0; s < 8; s++ {
		i, j := rand.IntN(m), rand.IntN(n)
		var want float64
		for l := 0; l < k; l++ {
			x := av[i*k+l]
			if ta {
				x = av[l*m+i]
			}
			y := bv[l*n+j]
			if tb {
				y = bv[j*k+l]
			}
			want += float64(x) * float64(y)
		}
		if math.Abs(float64(cv[i*n+j])-want) > 1e-3*math.Sqrt(float64(k)) {
			t.Fatalf("C[%d,%d] = %v, want %v", i, j, cv[i*n+j], want)
		}
	}
	// Calls are recorded in batches and synchronised once per batch, so
	// that small shapes are not dominated by submission latency.
	start = time.Now()
	if err := d.Do(g); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	est := time.Since(start)
	batch := max(1, int(50*time.Millisecond/max(est, time.Microsecond)))
	batch = min(batch, 200)
	reps := 0
	start = time.Now()
	for time.Since(start) < perfTime() || reps < 3 {
		for i := 0; i < batch; i++ {
			if err := d.Do(g); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		reps += batch
	}
	el := time.Since(start) / time.Duration(reps)
	if os.Getenv("BLIP_GEMM_PAUSE") == "1" { // for attaching a profiler
		fmt.Fprintf(os.Stderr, "pausing pid %d\n", os.Getpid())
		time.Sleep(120 * time.Second)
	}
	tile := d.pickTile(1, m, n)
	t.Logf("%s: first call %v, %v per call, %.1f GFLOP/s (tile %+v)", fmt.Sprintf("%dx%dx%d ta=%v tb=%v", m, n, k, ta, tb),
		first.Round(time.Millisecond), el, 2*float64(m)*float64(n)*float64(k)/el.Seconds()/1e9, tile)
}

func perfTime() time.Duration {
	if s := os.Getenv("BLIP_GEMM_SECONDS"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(v * float64(time.Second))
		}
	}
	return 2 * time.Second
}
