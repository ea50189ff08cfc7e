package vk

import (
	"math/rand/v2"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// A captured chain gives what Do gives, run after run with new inputs,
// and several times in one submission (the same secondary buffer executed
// back to back: each run reads what the previous one wrote).
func TestReplayMatchesDo(t *testing.T) {
	d := openTest(t)
	const n = 4099
	buf, x, y, z := chainViews(t, d, n)
	rp, err := d.Capture(scaleChain(x, y, z, n)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Free()
	rng := rand.New(rand.NewPCG(1, 2))
	for it, runs := range []int{1, 3, 5, 1} {
		in := make([]float32, n)
		for i := range in {
			in[i] = float32(rng.IntN(200) - 100)
		}
		if err := d.Write(buf, x.ByteOff(), f32bytes(in)); err != nil {
			t.Fatal(err)
		}
		disp0, bar0 := d.Stats()
		for r := 0; r < runs; r++ {
			if err := rp.Record(); err != nil {
				t.Fatal(err)
			}
		}
		// Each run after the first reads what the one before wrote: one
		// barrier in the primary buffer before it.
		if disp, bar := d.Stats(); disp-disp0 != 4*runs || bar-bar0 != runs-1 {
			t.Errorf("iteration %d: %d dispatches and %d barriers counted for %d runs of 4, want %d and %d",
				it, disp-disp0, bar-bar0, runs, 4*runs, runs-1)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		got := readF32(t, d, x)
		for i, v := range in {
			want := v
			for r := 0; r < runs; r++ {
				want = -(want * 2 * 3 * 0.25)
			}
			if got[i] != want {
				t.Fatalf("iteration %d (%d runs): x[%d] = %v, want %v", it, runs, i, got[i], want)
			}
		}
	}
}

// Calls recorded directly between replays are ordered with them.
func TestReplayInterleaved(t *testing.T) {
	d := openTest(t)
	const n = 1000
	buf, err := d.Alloc(4 * 3 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(buf)
	all := gpu.Whole(buf, gpu.F32)
	x, y, z := all.Slice(0, n), all.Slice(n, n), all.Slice(2*n, n)
	rp, err := d.Capture(scaleChain(x, y, z, n)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Free()
	in := make([]float32, n)
	for i := range in {
		in[i] = float32(i%13) - 6
	}
	if err := d.Write(buf, 0, f32bytes(in)); err != nil {
		t.Fatal(err)
	}
	// x -> -1.5x, then x *= 4 directly, then the chain again: 2.25 * 4 x.
	if err := rp.Record(); err != nil {
		t.Fatal(err)
	}
	if err := d.Do(gpu.Unary{Op: gpu.UnaryScale, X: x, Y: x, N: n, Alpha: 4}); err != nil {
		t.Fatal(err)
	}
	if err := rp.Record(); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	got := readF32(t, d, x)
	for i, v := range in {
		if want := v * 2.25 * 4; got[i] != want {
			t.Fatalf("x[%d] = %v, want %v", i, got[i], want)
		}
	}
}

// What a capture baked in can go away: descriptor sets (a cache trim) and
// the attention kernel's scratch buffer (replaced by a larger one). The
// replay records itself again and stays right; a call's own buffer freed
// is an error.
func TestReplayRecapture(t *testing.T) {
	d := openTest(t)
	ref := cpu.New()
	defer ref.Close()
	// A decode-shaped attention (one query over 300 keys) takes the
	// split-K path, which writes partial results to d.scratch.
	small := gpu.AttentionShape{B: 1, H: 2, Tq: 1, Tk: 300, D: 16}
	big := gpu.AttentionShape{B: 4, H: 4, Tq: 2, Tk: 900, D: 16}
	type att struct {
		call gpu.Attention
		bufs []gpu.Buffer
	}
	mk := func(be gpu.Backend, s gpu.AttentionShape, seed uint64) att {
		rng := rand.New(rand.NewPCG(seed, 7))
		var a att
		var vs []gpu.View
		for _, n := range []int{s.B * s.Tq * s.H * s.D, s.B * s.Tk * s.H * s.D, s.B * s.Tk * s.H * s.D, s.B * s.Tq * s.H * s.D} {
			b, err := be.Alloc(int64(4 * n))
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float32, n)
			for i := range x {
				x[i] = rng.Float32()*2 - 1
			}
			if err := be.Write(b, 0, f32bytes(x)); err != nil {
				t.Fatal(err)
			}
			a.bufs = append(a.bufs, b)
			vs = append(vs, gpu.Whole(b, gpu.F32))
		}
		a.call = gpu.Attention{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], AttentionShape: s}
		return a
	}
	if !useSplit(small) || !useSplit(big) {
		t.Fatal("the shapes no longer take the split-K path: pick others")
	}
	want := mk(ref, small, 1)
	if err := ref.Do(want.call); err != nil {
		t.Fatal(err)
	}
	wantO := readF32(t, ref, want.call.O)
	check := func(what string, o gpu.View) {
		t.Helper()
		got := readF32(t, d, o)
		for i := range wantO {
			if diff := got[i] - wantO[i]; diff > 1e-5 || diff < -1e-5 {
				t.Fatalf("%s: O[%d] = %v, CPU %v", what, i, got[i], wantO[i])
			}
		}
	}
	a := mk(d, small, 1)
	rp, err := d.Capture(a.call)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Free()
	run := func(what string, takes int) {
		t.Helper()
		if err := d.Write(a.bufs[3], 0, make([]byte, 4*a.call.O.Len)); err != nil {
			t.Fatal(err)
		}
		if err := rp.Record(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		check(what, a.call.O)
		if rp.(*replay).takes != takes {
			t.Errorf("%s: recorded %d times, want %d", what, rp.(*replay).takes, takes)
		}
	}
	run("first replay", 1)
	run("second replay", 1)
	scratch := d.scratch
	b := mk(d, big, 2)
	if err := d.Do(b.call); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if d.scratch == scratch {
		t.Fatal("the larger attention did not replace the scratch buffer")
	}
	run("after the scratch buffer was replaced", 2)
	d.mu.Lock()
	d.desc.reset(d) // as a trim of the descriptor cache does
	d.mu.Unlock()
	run("after a descriptor trim", 3)

	d.Free(a.bufs[0])
	if err := rp.Record(); err == nil || !strings.Contains(err.Error(), "freed") {
		t.Errorf("replay over a freed buffer: %v", err)
	}
	rp.Free()
	rp.Free()
	if err := rp.Record(); err == nil || !strings.Contains(err.Error(), "after Free") {
		t.Errorf("Record after Free: %v", err)
	}
	for _, bf := range append(a.bufs[1:], b.bufs...) {
		d.Free(bf)
	}
	for _, bf := range want.bufs {
		ref.Free(bf)
	}
}

// An invalid call is refused at Capture, as Do refuses it.
func TestCaptureChecks(t *testing.T) {
	d := openTest(t)
	buf, err := d.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(buf)
	v := gpu.Whole(buf, gpu.F32)
	_, err = d.Capture(gpu.Unary{Op: gpu.UnaryScale, X: v, Y: v, N: 100, Alpha: 2})
	if err == nil || !strings.Contains(err.Error(), "unary") {
		t.Errorf("capture of an overrunning call: %v", err)
	}
}

// With profiling on, a replay records its calls one by one so that each
// kernel is timed.
func TestReplayProfiled(t *testing.T) {
	d := openTest(t)
	if !d.info.Timestamps {
		t.Skipf("%s: no timestamps", d.info.Name)
	}
	const n = 512
	buf, err := d.Alloc(4 * 3 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(buf)
	all := gpu.Whole(buf, gpu.F32)
	rp, err := d.Capture(scaleChain(all.Slice(0, n), all.Slice(n, n), all.Slice(2*n, n), n)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Free()
	d.SetProfiling(true)
	defer d.SetProfiling(false)
	if err := rp.Record(); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if p := d.Profile(); p["unary"].Calls != 4 {
		t.Errorf("profile %v, want 4 timed unary calls", p)
	}
}
