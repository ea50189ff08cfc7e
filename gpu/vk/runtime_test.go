package vk

import (
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	vkapi "github.com/vulkan-go/vulkan"
)

// openTest opens the best Vulkan device with validation as make test asks;
// without one it skips, unless BLIP_REQUIRE_VULKAN=1 (CI) makes that a
// failure.
func openTest(t *testing.T) *Device {
	t.Helper()
	b, err := gpu.Open(gpu.Options{Backend: "vulkan", Device: -1, Validate: os.Getenv("BLIP_VALIDATE") == "1"})
	if err != nil {
		if os.Getenv("BLIP_REQUIRE_VULKAN") == "1" {
			t.Fatalf("no Vulkan device: %v", err)
		}
		t.Skipf("no Vulkan device: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b.(*Device)
}

func f32bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func bytesf32(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

func readF32(t *testing.T, b gpu.Backend, v gpu.View) []float32 {
	t.Helper()
	out := make([]byte, v.Bytes())
	if err := b.Read(v.Buf, v.ByteOff(), out); err != nil {
		t.Fatal(err)
	}
	return bytesf32(out)
}

// chainViews allocates one buffer (freed at the test's end) holding three
// views of n floats at unaligned offsets with gaps between them.
func chainViews(t *testing.T, d *Device, n int64) (buf gpu.Buffer, x, y, z gpu.View) {
	t.Helper()
	buf, err := d.Alloc(4 * (3*n + 16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(buf) })
	all := gpu.Whole(buf, gpu.F32)
	return buf, all.Slice(1, n), all.Slice(n+5, n), all.Slice(2*n+9, n)
}

// scaleChain is TestRecordingOrder's chain of dependent, partly in-place
// scalings (RAW, WAR, WAW at unaligned offsets of one buffer): each run
// maps x to -(1.5 x).
func scaleChain(x, y, z gpu.View, n int) []gpu.Call {
	return []gpu.Call{
		gpu.Unary{Op: gpu.UnaryScale, X: x, Y: y, N: n, Alpha: 2},    // y = 2x
		gpu.Unary{Op: gpu.UnaryScale, X: y, Y: z, N: n, Alpha: 3},    // RAW on y
		gpu.Unary{Op: gpu.UnaryScale, X: z, Y: x, N: n, Alpha: 0.25}, // WAR on x
		gpu.Unary{Op: gpu.UnaryScale, X: x, Y: x, N: n, Alpha: -1},   // in place
	}
}

// A chain of dependent scalings, some in place, at unaligned offsets inside
// one buffer, must come out exactly as computed in order: this fails if a
// barrier is missing (RAW, WAR or WAW).
func TestRecordingOrder(t *testing.T) {
	d := openTest(t)
	const n = 4099
	buf, x, y, z := chainViews(t, d, n)
	want := chainStart(t, d, buf, x, func(i int) float32 { return float32(i%97) - 48 })
	chainRuns(t, d, x, y, z, want, 5)
	chainCheck(t, d, x, want)
}

// chainStart writes init(i) to x and returns it: the chain's state before
// any run.
func chainStart(t *testing.T, d *Device, buf gpu.Buffer, x gpu.View, init func(i int) float32) []float32 {
	t.Helper()
	want := make([]float32, x.Len)
	for i := range want {
		want[i] = init(i)
	}
	if err := d.Write(buf, x.ByteOff(), f32bytes(want)); err != nil {
		t.Fatal(err)
	}
	return want
}

// chainRuns records scaleChain k times and applies it to want.
func chainRuns(t *testing.T, d *Device, x, y, z gpu.View, want []float32, k int) {
	t.Helper()
	for it := 0; it < k; it++ {
		if err := d.Do(scaleChain(x, y, z, int(x.Len))...); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			want[i] = -(want[i] * 2 * 3 * 0.25)
		}
	}
}

// chainCheck reads x back and compares it with want, exactly.
func chainCheck(t *testing.T, d *Device, x gpu.View, want []float32) {
	t.Helper()
	got := readF32(t, d, x)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("x[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// A Sync window's command buffers are submitted at 32, 64, 128, ...
// dispatches (firstPerCB, doubling), the count starting over after a Sync,
// and a chain of dependent dispatches across them computes what it would
// in one buffer.
func TestSubmitBatches(t *testing.T) {
	d := openTest(t)
	const n = 1000
	buf, x, y, z := chainViews(t, d, n)
	want := chainStart(t, d, buf, x, func(i int) float32 { return float32(i%13) - 6 })
	submitted := func() int {
		k := 0
		for _, s := range d.rec.slots {
			if s.submitted {
				k++
			}
		}
		return k
	}
	// scaleChain is 4 dispatches: 50 of them make 200, submitted at 32,
	// 96 and 224 (32 + 64 + 128): two buffers on their way.
	chainRuns(t, d, x, y, z, want, 50)
	if got := submitted(); got != 2 {
		t.Errorf("200 dispatches: %d buffers submitted, want 2 (perCB %d)", got, d.rec.perCB)
	}
	chainCheck(t, d, x, want)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	// After the Sync the first buffer goes at 32 again.
	chainRuns(t, d, x, y, z, want, 9)
	if got := submitted(); got != 1 {
		t.Errorf("36 dispatches after a Sync: %d buffers submitted, want 1", got)
	}
	chainCheck(t, d, x, want)
}

// Independent dispatches need no barrier between them; dependent ones do.
func TestBarrierElision(t *testing.T) {
	d := openTest(t)
	const n = 1024
	var vs []gpu.View
	for i := 0; i < 4; i++ {
		b, err := d.Alloc(4 * n)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Free(b)
		vs = append(vs, gpu.Whole(b, gpu.F32))
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	_, b0 := d.Stats()
	// Two independent scalings (a->b, c->d): no barrier.
	if err := d.Do(
		gpu.Unary{Op: gpu.UnaryScale, X: vs[0], Y: vs[1], N: n, Alpha: 2},
		gpu.Unary{Op: gpu.UnaryScale, X: vs[2], Y: vs[3], N: n, Alpha: 2},
	); err != nil {
		t.Fatal(err)
	}
	_, b1 := d.Stats()
	if b1 != b0 {
		t.Errorf("independent dispatches recorded %d barriers", b1-b0)
	}
	// Reading what was just written: one barrier.
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: vs[1], Y: vs[0], N: n, Alpha: 2}); err != nil {
		t.Fatal(err)
	}
	_, b2 := d.Stats()
	if b2 != b1+1 {
		t.Errorf("dependent dispatch recorded %d barriers, want 1", b2-b1)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// A Write is seen by calls recorded after it and not by calls before it.
func TestWriteOrdering(t *testing.T) {
	d := openTest(t)
	const n = 256
	bx, _ := d.Alloc(4 * n)
	by, _ := d.Alloc(4 * n)
	defer d.Free(bx)
	defer d.Free(by)
	x, y := gpu.Whole(bx, gpu.F32), gpu.Whole(by, gpu.F32)
	ones := make([]float32, n)
	twos := make([]float32, n)
	for i := range ones {
		ones[i], twos[i] = 1, 2
	}
	if err := d.Write(bx, 0, f32bytes(ones)); err != nil {
		t.Fatal(err)
	}
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: x, Y: y, N: n, Alpha: 10}); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(bx, 0, f32bytes(twos)); err != nil {
		t.Fatal(err)
	}
	if got := readF32(t, d, y); got[0] != 10 || got[n-1] != 10 {
		t.Fatalf("y = %v..%v, want 10 (the write after the call leaked into it)", got[0], got[n-1])
	}
}

// Freed memory is reused only after pending work finished, and Alloc
// returns zeros even for reused memory.
func TestFreeAndZeroing(t *testing.T) {
	d := openTest(t)
	const n = 1 << 16
	a, _ := d.Alloc(4 * n)
	av := gpu.Whole(a, gpu.F32)
	junk := make([]float32, n)
	for i := range junk {
		junk[i] = 7
	}
	if err := d.Write(a, 0, f32bytes(junk)); err != nil {
		t.Fatal(err)
	}
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: av, Y: av, N: n, Alpha: 3}); err != nil {
		t.Fatal(err)
	}
	d.Free(a) // work pending: deferred
	b, err := d.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(b)
	for _, v := range readF32(t, d, gpu.Whole(b, gpu.F32)) {
		if v != 0 {
			t.Fatalf("new allocation holds %v, want zeros", v)
		}
	}
	c, _ := d.Alloc(4 * n) // after the Sync in Read, a's memory is free again
	defer d.Free(c)
	for _, v := range readF32(t, d, gpu.Whole(c, gpu.F32)) {
		if v != 0 {
			t.Fatalf("reused allocation holds %v, want zeros", v)
		}
	}
}

func TestBadInput(t *testing.T) {
	d := openTest(t)
	if _, err := d.Alloc(1 << 39); err == nil || !strings.Contains(err.Error(), "asked for") {
		t.Errorf("huge Alloc: %v, want an out-of-memory error saying how much was asked", err)
	}
	if _, err := d.Alloc(0); err == nil {
		t.Error("Alloc(0) succeeded")
	}
	b, _ := d.Alloc(64)
	defer d.Free(b)
	if err := d.Write(b, 60, make([]byte, 8)); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("write past the end: %v", err)
	}
	c := cpu.New()
	cb, _ := c.Alloc(64)
	err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: gpu.Whole(cb, gpu.F32), Y: gpu.Whole(b, gpu.F32), N: 16})
	if err == nil || !strings.Contains(err.Error(), "unary") {
		t.Errorf("views of two backends: %v", err)
	}
	err = d.Do(gpu.Unary{Op: gpu.UnaryScale, X: gpu.Whole(b, gpu.F32), Y: gpu.Whole(b, gpu.F32), N: 17})
	if err == nil || !strings.Contains(err.Error(), "unary") {
		t.Errorf("N past the view: %v", err)
	}
}

func TestProfiling(t *testing.T) {
	d := openTest(t)
	if !d.Info().Timestamps {
		t.Skip("device has no timestamps")
	}
	b, _ := d.Alloc(4 << 16)
	defer d.Free(b)
	v := gpu.Whole(b, gpu.F32)
	d.SetProfiling(true)
	for i := 0; i < 3; i++ {
		if err := d.Do(gpu.Unary{Op: gpu.UnaryGELU, X: v, Y: v, N: 1 << 16}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.SetProfiling(false)
	p := d.Profile()
	if p["unary"].Calls != 3 || !(p["unary"].Nanos > 0) {
		t.Fatalf("profile %+v, want 3 timed unary calls", p)
	}
}

// Every message of the validation layer must surface as an error from Sync:
// inject one through the debug-report extension and check it comes back.
func TestValidationMessagesFail(t *testing.T) {
	d := openTest(t)
	if !d.inst.validate {
		t.Skip("validation not enabled (BLIP_VALIDATE=1)")
	}
	vkapi.DebugReportMessage(d.inst.h, vkapi.DebugReportFlags(vkapi.DebugReportErrorBit), vkapi.DebugReportObjectTypeUnknown, 0, 0, 42, "blip-test\x00", "injected message\x00")
	err := d.Sync()
	if err == nil || !strings.Contains(err.Error(), "injected message") {
		t.Fatalf("Sync after a validation message: %v, want an error carrying it", err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("the message must be reported once: %v", err)
	}
}

// A Write to mapped bytes that no pending work touches lands without
// waiting for that work; a Write to bytes it reads still waits, so the work
// sees the old values.
func TestWriteBesidePendingWork(t *testing.T) {
	d := openTest(t)
	const n = 1000
	var vs []gpu.View
	for range 3 {
		b, err := d.Alloc(4 * n)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Free(b)
		vs = append(vs, gpu.Whole(b, gpu.F32))
	}
	x, y, other := vs[0], vs[1], vs[2]
	old := make([]float32, n)
	for i := range old {
		old[i] = float32(i)
	}
	if err := d.Write(x.Buf, 0, f32bytes(old)); err != nil {
		t.Fatal(err)
	}
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: x, Y: y, N: n, Alpha: 2}); err != nil {
		t.Fatal(err)
	}
	seven := make([]float32, n)
	for i := range seven {
		seven[i] = 7
	}
	if err := d.Write(other.Buf, 0, f32bytes(seven)); err != nil {
		t.Fatal(err)
	}
	if other.Buf.(*buffer).blk.mapped != nil && !d.pendingWork() {
		t.Error("a Write to mapped bytes no pending work touches waited for that work")
	}
	if err := d.Write(x.Buf, 0, f32bytes(seven)); err != nil { // read by the pending scale
		t.Fatal(err)
	}
	if d.pendingWork() {
		t.Error("a Write to bytes pending work reads did not wait for it")
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	gy, gother := readF32(t, d, y), readF32(t, d, other)
	for i := range old {
		if gy[i] != 2*old[i] || gother[i] != 7 {
			t.Fatalf("element %d: y = %v (want %v), other = %v (want 7)", i, gy[i], 2*old[i], gother[i])
		}
	}
}

// A mapping the CPU reads uncached (a discrete GPU's device-local memory
// behind its BAR) is read through the staging block, which gives the same
// bytes; a cached one is read in place.
func TestReadUncachedMapping(t *testing.T) {
	d := openTest(t)
	const n = 1001
	b, err := d.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(b)
	blk := b.(*buffer).blk
	if blk.mapped == nil {
		t.Skip("device memory is not host-visible here: every read is staged")
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i) - 500
	}
	if err := d.Write(b, 0, f32bytes(x)); err != nil {
		t.Fatal(err)
	}
	v := gpu.Whole(b, gpu.F32)
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: v, Y: v, N: n, Alpha: 3}); err != nil {
		t.Fatal(err)
	}
	read := func() []float32 {
		out := make([]byte, 4*(n-7))
		if err := d.Read(b, 4*3, out); err != nil { // unaligned part
			t.Fatal(err)
		}
		return bytesf32(out)
	}
	scale := float32(3)
	check := func(what string, got []float32) {
		for i, g := range got {
			if want := scale * x[i+3]; g != want {
				t.Fatalf("%s: element %d = %v, want %v", what, i+3, g, want)
			}
		}
	}
	cached := blk.cached
	if cached {
		check("cached", read())
		if d.staging != nil {
			t.Error("a host-cached mapping was read through the staging block")
		}
	}
	blk.cached = false
	defer func() { blk.cached = cached }()
	check("uncached", read())
	// With work pending, the staged copy is recorded after it and must
	// see its result.
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: v, Y: v, N: n, Alpha: 3}); err != nil {
		t.Fatal(err)
	}
	scale = 9
	check("uncached, after pending work", read())
	if d.staging == nil {
		t.Error("an uncached mapping was read in place, not through the staging block")
	}
}
