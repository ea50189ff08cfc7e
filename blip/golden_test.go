package blip

import (
	"math"
	"path/filepath"
	"testing"

	"blip/data/safetensors"
	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/gputest"
)

// golden holds HF transformers' outputs for the tiny models
// (testdata/hf-blip-tiny/README.md).
type golden struct {
	t *testing.T
	f *safetensors.File
}

func openGolden(t *testing.T) *golden {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(tinyDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &golden{t, f}
}

// texts are the golden ITM texts, tokenised ([CLS] ... [SEP]) without
// their padding.
func (g *golden) texts() [][]int32 {
	s := g.shape("itm.input_ids")
	b, tt := s[0], s[1]
	ids, mask := g.i32("itm.input_ids"), g.i32("itm.attention_mask")
	texts := make([][]int32, b)
	for j := range b {
		for k := range tt {
			if mask[j*tt+k] == 1 {
				texts[j] = append(texts[j], ids[j*tt+k])
			}
		}
	}
	return texts
}

func (g *golden) has(name string) bool { _, ok := g.f.Info(name); return ok }

func (g *golden) f32(name string) []float32 {
	g.t.Helper()
	v, err := g.f.Float32(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

func (g *golden) shape(name string) []int {
	g.t.Helper()
	info, ok := g.f.Info(name)
	if !ok {
		g.t.Fatalf("golden has no %q", name)
	}
	s := make([]int, len(info.Shape))
	for i, d := range info.Shape {
		s[i] = int(d)
	}
	return s
}

func (g *golden) i32(name string) []int32 {
	g.t.Helper()
	v, err := g.f.Int64(name)
	if err != nil {
		g.t.Fatal(err)
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// maxAbsDiff returns max |a-b| and max |b|; NaNs and length mismatches give
// +Inf.
func maxAbsDiff(a, b []float32) (diff, scale float64) {
	if len(a) != len(b) {
		return math.Inf(1), 0
	}
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		diff = max(diff, d)
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

// checkClose fails unless got is within tol of want elementwise, and logs
// the error so that runs report the measured accuracy.
func checkClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	d, _ := maxAbsDiff(got, want)
	if !(d <= tol) {
		t.Errorf("%s: max abs error %.3g > %.3g (%d values)", what, d, tol, len(want))
		return
	}
	t.Logf("%s: max abs error %.3g", what, d)
}

// backendCase is a backend to run the golden checks on, with the
// tolerance of its forward outputs (gradients use 1e-4 relative either way).
type backendCase struct {
	name string
	open func(t *testing.T) gpu.Backend
	tol  float64
}

var backends = []backendCase{
	{"cpu", func(t *testing.T) gpu.Backend {
		be := cpu.New()
		t.Cleanup(func() { be.Close() })
		return be
	}, 1e-4},
	{"vulkan", openVulkan, 1e-3},
}

// openVulkan is gputest.Vulkan: the best Vulkan device, validated under
// BLIP_VALIDATE=1, skipped without one unless BLIP_REQUIRE_VULKAN=1.
func openVulkan(t *testing.T) gpu.Backend { return gputest.Vulkan(t) }

// loadTiny loads testdata/hf-blip-tiny/<folder> onto be, closed with the test.
func loadTiny(t testing.TB, folder string, be gpu.Backend) *Model {
	t.Helper()
	m, err := LoadDir(filepath.Join(tinyDir, folder), be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}
