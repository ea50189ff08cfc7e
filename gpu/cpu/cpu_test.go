package cpu

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/paritytest"
)

func TestReference(t *testing.T) {
	b := New()
	defer b.Close()
	paritytest.RunReference(t, b)
}

// TestReferenceGonum runs the table with GEMM through gonum, the path taken
// where the assembly kernel is missing.
func TestReferenceGonum(t *testing.T) {
	if !haveKernel {
		t.Skip("gonum is the only GEMM path here; TestReference covers it")
	}
	useKernel = false
	defer func() { useKernel = haveKernel }()
	b := New()
	defer b.Close()
	paritytest.RunReference(t, b)
}

func TestErrors(t *testing.T) {
	b, other := New(), New()
	defer b.Close()
	defer other.Close()
	paritytest.RunErrors(t, b, other)
}

func TestOpen(t *testing.T) {
	b, err := gpu.Open(gpu.Options{Backend: "cpu", Device: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	info := b.Info()
	if b.Name() != "cpu" || info.Backend != "cpu" || info.Type != gpu.CPU || !strings.Contains(info.Name, "threads") {
		t.Errorf("Name %q, Info %+v", b.Name(), info)
	}
	if info.MemoryBytes <= 0 {
		t.Logf("memory size unknown")
	}
	ds, errs := gpu.ListDevices(gpu.Options{})
	found := false
	for _, d := range ds {
		found = found || d.Backend == "cpu"
	}
	if !found || len(errs) > 0 {
		t.Errorf("ListDevices = %+v, %v", ds, errs)
	}
	if _, err := gpu.Open(gpu.Options{Backend: "cpu", Device: 1}); err == nil {
		t.Errorf("Open(cpu, device 1) succeeded")
	}
}

func TestBuffers(t *testing.T) {
	b := New()
	defer b.Close()
	buf, err := b.Alloc(10)
	if err != nil {
		t.Fatal(err)
	}
	if buf.Bytes() != 10 || buf.Owner() != gpu.Backend(b) {
		t.Errorf("Bytes %d, Owner %v", buf.Bytes(), buf.Owner())
	}
	got := make([]byte, 10)
	got[3] = 7
	if err := b.Read(buf, 0, got); err != nil {
		t.Fatal(err)
	}
	for i, x := range got {
		if x != 0 {
			t.Errorf("fresh buffer byte %d = %d", i, x)
		}
	}
	if err := b.Write(buf, 4, []byte{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	if err := b.Read(buf, 5, got[:3]); err != nil || got[0] != 2 || got[2] != 4 {
		t.Errorf("Read after Write: %v %v", got[:3], err)
	}
	for _, tc := range []struct {
		off int64
		n   int
	}{{-1, 1}, {8, 3}, {11, 0}, {0, 11}} {
		err := b.Write(buf, tc.off, make([]byte, tc.n))
		if err == nil || !strings.Contains(err.Error(), "10 bytes") {
			t.Errorf("Write(off %d, %d bytes) = %v, want an error naming the buffer size", tc.off, tc.n, err)
		}
		if err := b.Read(buf, tc.off, make([]byte, tc.n)); err == nil {
			t.Errorf("Read(off %d, %d bytes) succeeded", tc.off, tc.n)
		}
	}
	if err := b.Write(buf, 10, nil); err != nil {
		t.Errorf("empty Write at the end: %v", err)
	}

	// Absurd sizes.
	for _, n := range []int64{-4, 1 << 50, math.MaxInt64} {
		_, err := b.Alloc(n)
		if err == nil || !strings.Contains(err.Error(), strconv.FormatInt(n, 10)) {
			t.Errorf("Alloc(%d) = %v, want an error naming the size", n, err)
		}
	}
	if z, err := b.Alloc(0); err != nil || z.Bytes() != 0 {
		t.Errorf("Alloc(0) = %v, %v", z, err)
	}

	// Buffers of another backend and freed buffers.
	other := New()
	defer other.Close()
	ob, _ := other.Alloc(16)
	if err := b.Write(ob, 0, []byte{1}); err == nil {
		t.Errorf("Write to another backend's buffer succeeded")
	}
	f, _ := b.Alloc(16)
	b.Free(f)
	b.Free(f) // twice is harmless
	if err := b.Read(f, 0, got[:1]); err == nil {
		t.Errorf("Read of a freed buffer succeeded")
	}
	x := gpu.View{Buf: f, Len: 4, DType: gpu.F32}
	y := gpu.Whole(buf, gpu.F32)
	err = b.Do(gpu.Unary{X: x, Y: y, N: 2})
	if err == nil || !strings.Contains(err.Error(), "unary") || !strings.Contains(err.Error(), "freed") {
		t.Errorf("Do on a freed buffer: %v", err)
	}
}

// TestPointerCalls checks that pointers to call structs are accepted.
func TestPointerCalls(t *testing.T) {
	b := New()
	defer b.Close()
	buf, _ := b.Alloc(32)
	x := gpu.View{Buf: buf, Len: 4, DType: gpu.F32}
	y := gpu.View{Buf: buf, Off: 4, Len: 4, DType: gpu.F32}
	b.Write(buf, 0, []byte{0, 0, 0x80, 0x3f})
	if err := b.Do(&gpu.Unary{Op: gpu.UnaryScale, Alpha: 2, X: x, Y: y, N: 4}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	b.Read(buf, 16, got)
	if got[3] != 0x40 {
		t.Errorf("Y[0] bytes %v, want 2.0", got)
	}
}

func TestClose(t *testing.T) {
	b := New()
	buf, _ := b.Alloc(16)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Write(buf, 0, []byte{1}); err == nil {
		t.Errorf("Write after Close succeeded")
	}
	if _, err := b.Alloc(4); err == nil {
		t.Errorf("Alloc after Close succeeded")
	}
	if err := b.Do(gpu.Unary{X: gpu.Whole(buf, gpu.F32), Y: gpu.Whole(buf, gpu.F32), N: 1}); err == nil {
		t.Errorf("Do after Close succeeded")
	}
}

// TestGELUAccuracy compares the fast erf behind gelu with math.Erf.
func TestGELUAccuracy(t *testing.T) {
	worst, at := 0.0, 0.0
	for i := -3_000_000; i <= 3_000_000; i++ {
		x := float32(i) * 1e-5
		if i%100 == 0 {
			x = float32(i) * 1e-3 // out to ±3000
		}
		got := float64(gelu(x))
		want := 0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2))
		e := math.Abs(got-want) / math.Max(1, math.Abs(want))
		if e > worst {
			worst, at = e, float64(x)
		}
	}
	t.Logf("worst |gelu - exact| / max(1, |exact|) = %.3g at x = %g", worst, at)
	if worst > 2e-7 {
		t.Errorf("gelu error %.3g at x = %g, want <= 2e-7", worst, at)
	}
	for _, x := range []float32{0, float32(math.Copysign(0, -1)), 1e30, -1e30, float32(math.Inf(1))} {
		got := gelu(x)
		want := float32(0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2)))
		if got != want {
			t.Errorf("gelu(%g) = %g, want %g", x, got, want)
		}
	}
}

func TestProfile(t *testing.T) {
	b := New()
	defer b.Close()
	var _ gpu.Profiler = b
	buf, _ := b.Alloc(64)
	x := gpu.Whole(buf, gpu.F32)
	b.SetProfiling(true)
	for range 3 {
		if err := b.Do(gpu.Unary{Op: gpu.UnaryExp, X: x, Y: x, N: 16}); err != nil {
			t.Fatal(err)
		}
	}
	p := b.Profile()
	if p["unary"].Calls != 3 || len(p) != 1 {
		t.Errorf("Profile = %+v", p)
	}
	if p := b.Profile(); len(p) != 0 {
		t.Errorf("Profile not reset: %+v", p)
	}
}
