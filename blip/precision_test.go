package blip

import (
	"os"
	"testing"

	"blip/gpu"
	"blip/graph"
)

// precisionTol is the documented accuracy of 16-bit weight storage on the
// tiny golden model: the largest absolute error allowed against
// transformers' fp32 outputs (ITM logits and ITC cosines, of magnitude up to
// a few units). Each weight is rounded with relative error at most u (f16
// 2^-11, bf16 2^-8); through a dozen matrix products of width 64 with
// random signs the errors add up to a few u times the output scale. The
// bounds are 4u: a wrong or stale copy, or reading f16 bits as bf16, is
// off by far more (0.1 and up).
var precisionTol = map[gpu.DType]float64{
	gpu.F16:  4.0 / 2048,
	gpu.BF16: 4.0 / 256,
}

// TestPrecisionGolden runs the golden checks with 16-bit weights on every
// backend: retrieval outputs within precisionTol of transformers' fp32
// outputs and further from them than fp32 is (the 16-bit path is the one
// taken), and captions token-identical to transformers' (greedy, beam 3, 20
// forced tokens, prompt).
func TestPrecisionGolden(t *testing.T) {
	gd := openGolden(t)
	want := readGoldenCaptions(t)
	pixels := gd.f32("pixel_values")
	for _, bc := range backends {
		for _, dt := range []gpu.DType{gpu.F16, gpu.BF16} {
			t.Run(bc.name+"/"+dt.String(), func(t *testing.T) {
				be := bc.open(t)
				if info := be.Info(); info.Backend == "vulkan" {
					// make test-coopmat runs this on a device with the
					// tensor-core GEMM, which must then carry the f16 products.
					if os.Getenv("BLIP_REQUIRE_COOPMAT") == "1" && info.CoopGemm == "" {
						t.Fatalf("%s: BLIP_REQUIRE_COOPMAT=1 but no cooperative-matrix GEMM", info.Name)
					}
					t.Logf("tensor GEMM: %q", info.CoopGemm)
				}
				m := loadTiny(t, "tiny-retrieval", be)
				full := retrievalOutputs(t, m, be, gd)
				if err := m.SetPrecision(dt); err != nil {
					t.Fatal(err)
				}
				if m.Precision() != dt {
					t.Fatalf("Precision() = %v after SetPrecision(%v)", m.Precision(), dt)
				}
				low, stats := retrievalRun(t, m, be, gd, encoderConfig())
				// The plan keeps the activations that only linear layers
				// (or in-place attention) read in 16 bits: per ViT layer
				// the two norms' outputs, the qkv projection's, attention's
				// output and the MLP's hidden layer, at least.
				if vl := len(m.Vision.Layers); stats.LowActivations < 5*vl {
					t.Errorf("%d activations in 16 bits, want at least %d (5 per vision layer)", stats.LowActivations, 5*vl)
				}
				all32, _ := retrievalRun(t, m, be, gd, graph.Config{DropoutOff: true})
				for _, name := range retrievalGoldenNames {
					d, _ := maxAbsDiff(low[name], all32[name])
					t.Logf("%s: 16-bit activations move it by %.3g", name, d)
					// Under fp16 the products round their inputs to f16
					// anyway: keeping those in f16 changes no bit.
					if dt == gpu.F16 && d != 0 {
						t.Errorf("%s: f16 activations change the f16-weight result by %.3g", name, d)
					}
				}
				for _, name := range retrievalGoldenNames {
					checkClose(t, name, low[name], gd.f32(name), precisionTol[dt])
					dLow, _ := maxAbsDiff(low[name], gd.f32(name))
					dFull, _ := maxAbsDiff(full[name], gd.f32(name))
					if !(dLow > dFull) {
						t.Errorf("%s: %s error %.3g is not above fp32's %.3g: the 16-bit weights are not read", name, dt, dLow, dFull)
					}
				}

				mc := loadTiny(t, "tiny-captioning", be)
				if err := mc.SetPrecision(dt); err != nil {
					t.Fatal(err)
				}
				for _, c := range want.cases() {
					cfg := mc.CaptionConfig()
					c.cfg(&cfg)
					out, err := mc.GenerateCaptions(be, pixels, 4, c.prompts, cfg)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					for i := range c.want {
						if got := out.Sequences[i][:out.Lengths[i]]; !equalIDs(got, c.want[i]) {
							t.Errorf("%s image %d with %s weights: got %v, transformers (fp32) %v", c.name, i, dt, got, c.want[i])
						}
					}
				}
			})
		}
	}
}
