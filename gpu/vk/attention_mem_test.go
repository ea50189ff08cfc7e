package vk

import (
	"testing"

	"blip/gpu"
)

// The fused attention path must not allocate anything proportional to
// Tq*Tk: device memory is only the (B, T, H*D) tensors, so it grows linearly
// with T. Run forward+backward at T=577 and T=2304 and compare the device's
// peak with the bytes of the tensors themselves.
func TestAttentionMemoryLinear(t *testing.T) {
	d := openTest(t)
	const b, h, dim = 1, 2, 64
	var peaks [2]int64
	for i, T := range []int{577, 2304} {
		_, _, before := d.MemoryStats()
		n := int64(b * T * h * dim)
		var vs []gpu.View
		var tensorBytes int64
		for _, size := range []int64{n, n, n, n, int64(b * h * T), n, n, n, n} { // Q K V O LSE dO dQ dK dV
			buf, err := d.Alloc(4 * size)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Free(buf)
			tensorBytes += (4*size + allocAlign - 1) / allocAlign * allocAlign
			vs = append(vs, gpu.Whole(buf, gpu.F32))
		}
		shape := gpu.AttentionShape{B: b, H: h, Tq: T, Tk: T, D: dim}
		err := d.Do(
			gpu.Attention{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], LSE: vs[4], AttentionShape: shape},
			gpu.AttentionBackward{Q: vs[0], K: vs[1], V: vs[2], O: vs[3], LSE: vs[4], DO: vs[5], DQ: vs[6], DK: vs[7], DV: vs[8], AttentionShape: shape},
		)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		_, _, peak := d.MemoryStats()
		peaks[i] = peak - before
		t.Logf("T=%d: peak device memory for attention fwd+bwd %.2f MiB (tensors %.2f MiB; a T x T score matrix alone would be %.2f MiB)",
			T, float64(peaks[i])/(1<<20), float64(tensorBytes)/(1<<20), float64(4*b*h*T*T)/(1<<20))
		if peaks[i] > tensorBytes {
			t.Errorf("T=%d: peak grew by %d bytes beyond the %d bytes of tensors: the fused path allocated scratch", T, peaks[i], tensorBytes)
		}
	}
}
