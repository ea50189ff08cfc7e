package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/graph"
)

// TestClipGradNorm checks the device norm against a float64 sum, that an
// update with clipping equals the reference update with the gradients
// scaled to MaxGradNorm (eps is large so that Adam does not cancel the
// scale), that a norm under the limit leaves the gradients alone, and that
// a non-finite norm skips the step.
func TestClipGradNorm(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		for _, tc := range []struct {
			name    string
			maxNorm float64
			clipped bool
		}{{"over", 0.5, true}, {"under", 1e6, false}} {
			t.Run(tc.name, func(t *testing.T) {
				ps := newSet(t, be, 7)
				cfg := DefaultConfig()
				cfg.LR, cfg.Eps, cfg.MaxGradNorm = 1e-2, 0.5, tc.maxNorm
				opt, err := New(ps, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer opt.Free()
				rng := rand.New(rand.NewPCG(8, 8))
				refs := map[*graph.Param]*refAdamW{}
				for step := range 3 {
					grads, sq := writeGrads(t, ps, rng, 1, nil)
					for _, p := range ps.List() {
						if step == 0 {
							refs[p] = newRef(read(t, p))
						}
					}
					norm := math.Sqrt(sq)
					scale := min(1, tc.maxNorm/(norm+1e-6))
					if (scale < 1) != tc.clipped {
						t.Fatalf("norm %g against max %g: test case is wrong", norm, tc.maxNorm)
					}
					for _, p := range ps.List() {
						refs[p].step1(grads[p], scale, cfg.LR, cfg.Beta1, cfg.Beta2, cfg.Eps, cfg.WeightDecay)
					}
					if err := opt.Step(); err != nil {
						t.Fatal(err)
					}
					if err := be.Sync(); err != nil {
						t.Fatal(err)
					}
					if got := opt.GradNorm(); math.Abs(got-norm) > 1e-5*norm {
						t.Errorf("step %d: GradNorm %.9g, want %.9g", step, got, norm)
					}
				}
				for _, p := range ps.List() {
					near(t, p.Name(), read(t, p), refs[p].p, adamwTol)
				}

				// A NaN gradient: an error, and nothing moves.
				before := map[*graph.Param][]float32{}
				for _, p := range ps.List() {
					before[p] = read(t, p)
				}
				p0 := ps.List()[0]
				g := randVec(rng, p0.Numel(), 1)
				g[1] = float32(math.NaN())
				if err := p0.WriteGrad(g); err != nil {
					t.Fatal(err)
				}
				if err := opt.Step(); !errors.Is(err, ErrNonFinite) {
					t.Fatalf("Step with a NaN gradient: %v, want ErrNonFinite", err)
				}
				if err := be.Sync(); err != nil {
					t.Fatal(err)
				}
				for _, p := range ps.List() {
					after := read(t, p)
					for i := range after {
						if after[i] != before[p][i] {
							t.Fatalf("%s[%d] moved on a skipped step", p.Name(), i)
						}
					}
					if n := opt.StepCount(p); n != 3 {
						t.Fatalf("%s: step count %d after a skipped step, want 3", p.Name(), n)
					}
				}
			})
		}
	})
}

// TestClipLargeNorm checks the piecewise reduction on a parameter larger
// than one scratch piece, with a length that leaves partial rows.
func TestClipLargeNorm(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		ps := graph.NewParams()
		n := clipScratch + 3*clipRow + 5*clipTailRow + 7
		for _, shape := range [][]int{{n}, {3, 5}} {
			if _, err := ps.New("w"+string(rune('a'+len(ps.List()))), shape...); err != nil {
				t.Fatal(err)
			}
		}
		if err := ps.Alloc(be); err != nil {
			t.Fatal(err)
		}
		defer ps.Free()
		cfg := DefaultConfig()
		cfg.MaxGradNorm = 1
		opt, err := New(ps, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer opt.Free()
		rng := rand.New(rand.NewPCG(9, 9))
		_, sq := writeGrads(t, ps, rng, 0.01, nil)
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}
		want := math.Sqrt(sq)
		if got := opt.GradNorm(); math.Abs(got-want) > 1e-5*want {
			t.Errorf("GradNorm %.9g, want %.9g", got, want)
		}
	})
}
