package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/gpu/gputest"
	"blip/graph"
)

// openVulkan is gputest.Vulkan: the best Vulkan device, validated under
// BLIP_VALIDATE=1, skipped without one unless BLIP_REQUIRE_VULKAN=1.
func openVulkan(t *testing.T) gpu.Backend { return gputest.Vulkan(t) }

// onBackends runs f on the CPU backend and on Vulkan (when there is one).
func onBackends(t *testing.T, f func(t *testing.T, be gpu.Backend)) {
	t.Run("cpu", func(t *testing.T) {
		be := cpu.New()
		t.Cleanup(func() { be.Close() })
		f(t, be)
	})
	t.Run("vulkan", func(t *testing.T) {
		f(t, openVulkan(t))
	})
}

// testParam declares a parameter of the small test set.
type testParam struct {
	name  string
	shape []int
}

// testSet covers what the optimiser distinguishes: weights (2-D and a 3-D
// embedding that decays), a bias, a LayerNorm weight, and a tensor of more
// than 64 elements so that runs span alignment gaps.
var testSet = []testParam{
	{"enc.weight", []int{3, 5}},
	{"enc.bias", []int{5}},
	{"enc.LayerNorm.weight", []int{5}},
	{"proj.weight", []int{70, 3}},
	{"embeddings.class_embedding", []int{1, 1, 4}},
	{"proj.bias", []int{70}},
}

// newSet allocates testSet on be with random values of scale about 1.
func newSet(t *testing.T, be gpu.Backend, seed uint64) *graph.Params {
	t.Helper()
	ps := graph.NewParams()
	for _, tp := range testSet {
		if _, err := ps.New(tp.name, tp.shape...); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Free)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range ps.List() {
		if err := p.Write(randVec(rng, p.Numel(), 1)); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

func randVec(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

// writeGrads writes a random gradient (N(0, scale^2), drawn parameter by
// parameter from rng) to every parameter of ps, after edit(j, g), if given,
// changed parameter j's; it returns them with their sum of squares.
func writeGrads(t *testing.T, ps *graph.Params, rng *rand.Rand, scale float64, edit func(j int, g []float32)) (map[*graph.Param][]float32, float64) {
	t.Helper()
	grads := map[*graph.Param][]float32{}
	var sq float64
	for j, p := range ps.List() {
		g := randVec(rng, p.Numel(), scale)
		if edit != nil {
			edit(j, g)
		}
		for _, x := range g {
			sq += float64(x) * float64(x)
		}
		if err := p.WriteGrad(g); err != nil {
			t.Fatal(err)
		}
		grads[p] = g
	}
	return grads, sq
}

func read(t *testing.T, p *graph.Param) []float32 {
	t.Helper()
	v := make([]float32, p.Numel())
	if err := p.Read(v); err != nil {
		t.Fatal(err)
	}
	return v
}

// refAdamW is torch.optim.AdamW (single-tensor, non-amsgrad, maximize off)
// for one parameter in float64:
//
//	step += 1
//	param *= 1 - lr*wd
//	m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g*g
//	param -= lr/(1-beta1^step) * m / (sqrt(v)/sqrt(1-beta2^step) + eps)
type refAdamW struct {
	p, m, v []float64
	step    int
}

func newRef(p []float32) *refAdamW {
	r := &refAdamW{p: make([]float64, len(p)), m: make([]float64, len(p)), v: make([]float64, len(p))}
	for i, x := range p {
		r.p[i] = float64(x)
	}
	return r
}

func (r *refAdamW) step1(g []float32, gscale, lr, b1, b2, eps, wd float64) {
	r.step++
	bc1 := 1 - math.Pow(b1, float64(r.step))
	bc2 := 1 - math.Pow(b2, float64(r.step))
	for i := range r.p {
		gi := float64(g[i]) * gscale
		r.p[i] *= 1 - lr*wd
		r.m[i] = b1*r.m[i] + (1-b1)*gi
		r.v[i] = b2*r.v[i] + (1-b2)*gi*gi
		r.p[i] -= lr / bc1 * r.m[i] / (math.Sqrt(r.v[i])/math.Sqrt(bc2) + eps)
	}
}

// near checks got against want within tol (absolute, plus tol relative to
// |want|).
func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %.9g, want %.9g (diff %.3g, tol %.3g)", what, i, got[i], want[i], d, tol)
		}
	}
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
