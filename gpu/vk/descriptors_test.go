package vk

import (
	"testing"

	"blip/gpu"
)

// Descriptor sets come from pools of a fixed size, filled in turn and reused
// after a reset. With pools of three sets, a chain of 40 dispatches that
// each bind different ranges needs 14 pools; every dispatch must read and
// write what its own set names (a set from an overfilled pool is refused
// on NVIDIA, VK_ERROR_OUT_OF_POOL_MEMORY), and after a reset the same
// pools serve again.
func TestDescriptorPools(t *testing.T) {
	d := openTest(t)
	const n, steps, perPool = 257, 40, 3
	d.mu.Lock()
	d.desc.destroy(d)
	d.desc = descriptors{perPool: perPool}
	err := d.desc.init(d)
	d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	buf, err := d.Alloc(4 * n * (steps + 1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(buf)
	all := gpu.Whole(buf, gpu.F32)
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	chain := func(alpha float32) {
		t.Helper()
		if err := d.Write(buf, 0, f32bytes(x)); err != nil {
			t.Fatal(err)
		}
		var calls []gpu.Call
		for s := 0; s < steps; s++ { // slice s+1 = alpha * slice s
			calls = append(calls, gpu.Unary{Op: gpu.UnaryScale, X: all.Slice(int64(s*n), n), Y: all.Slice(int64((s+1)*n), n), N: n, Alpha: alpha})
		}
		if err := d.Do(calls...); err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		got := readF32(t, d, all)
		for s := 0; s <= steps; s++ {
			scale := float32(1)
			for i := 0; i < s; i++ {
				scale *= alpha
			}
			for i := 0; i < n; i++ {
				if want := x[i] * scale; got[s*n+i] != want {
					t.Fatalf("alpha %v: slice %d [%d] = %v, want %v", alpha, s, i, got[s*n+i], want)
				}
			}
		}
	}
	chain(-1)
	wantPools := (steps + perPool - 1) / perPool
	if len(d.desc.pools) != wantPools || d.desc.allocated != steps {
		t.Fatalf("%d sets from %d pools, want %d from %d", d.desc.allocated, len(d.desc.pools), steps, wantPools)
	}
	d.mu.Lock()
	d.desc.reset(d)
	d.mu.Unlock()
	chain(2) // alpha 2 is exact in fp32 for 40 steps of these values
	if len(d.desc.pools) != wantPools {
		t.Errorf("after a reset: %d pools, want the same %d reused", len(d.desc.pools), wantPools)
	}
	if _, err := d.desc.set(d, descKey{n: 0}, nil); err == nil {
		t.Error("a set of no bindings was allocated")
	}
}
