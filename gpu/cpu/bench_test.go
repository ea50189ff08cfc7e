package cpu

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"blip/gpu"
)

func benchGemm(b *testing.B, g gpu.Gemm) {
	be := New()
	defer be.Close()
	aRows, aCols, bRows, bCols := g.M, g.K, g.K, g.N
	if g.TransA {
		aRows, aCols = aCols, aRows
	}
	if g.TransB {
		bRows, bCols = bCols, bRows
	}
	mk := func(n int) gpu.View {
		buf, err := be.Alloc(int64(n) * 4)
		if err != nil {
			b.Fatal(err)
		}
		f := make([]float32, n)
		for i := range f {
			f[i] = float32(rand.NormFloat64())
		}
		be.Write(buf, 0, unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*n))
		return gpu.Whole(buf, gpu.F32)
	}
	batch := max(g.Batch, 1)
	g.A, g.B, g.C = mk(batch*aRows*aCols), mk(batch*bRows*bCols), mk(batch*g.M*g.N)
	if g.Act != gpu.ActNone {
		g.Bias = mk(g.N)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := be.Do(g); err != nil {
			b.Fatal(err)
		}
	}
	flops := 2 * float64(g.M) * float64(g.N) * float64(g.K) * float64(batch)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkGemm(b *testing.B) {
	for _, c := range []struct {
		name string
		g    gpu.Gemm
	}{
		{"1024x1024x1024", gpu.Gemm{M: 1024, N: 1024, K: 1024}},
		{"1024x1024x1024_tb", gpu.Gemm{M: 1024, N: 1024, K: 1024, TransB: true}},
		{"1024x1024x1024_ta", gpu.Gemm{M: 1024, N: 1024, K: 1024, TransA: true}},
		{"577x3072x768_tb_bias_gelu", gpu.Gemm{M: 577, N: 3072, K: 768, TransB: true, Act: gpu.ActGELU}},
		{"577x3072x768_tb", gpu.Gemm{M: 577, N: 3072, K: 768, TransB: true}},
		{"attn_12x577x577x64_tb", gpu.Gemm{Batch: 12, M: 577, N: 577, K: 64, TransB: true, StrideA: 577 * 64, StrideB: 577 * 64}},
	} {
		b.Run(c.name, func(b *testing.B) { benchGemm(b, c.g) })
	}
}

// BenchmarkGemmGonum is BenchmarkGemm's main shapes on the gonum path, the
// fallback where the assembly kernel is missing.
func BenchmarkGemmGonum(b *testing.B) {
	useKernel = false
	defer func() { useKernel = haveKernel }()
	b.Run("1024x1024x1024", func(b *testing.B) { benchGemm(b, gpu.Gemm{M: 1024, N: 1024, K: 1024}) })
	b.Run("577x3072x768_tb", func(b *testing.B) { benchGemm(b, gpu.Gemm{M: 577, N: 3072, K: 768, TransB: true}) })
}
