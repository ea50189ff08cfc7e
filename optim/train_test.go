package optim

import (
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
	"blip/graph"
)

// TestTrainMLP trains a small classifier (linear, LayerNorm, GELU, linear,
// cross-entropy) on a fixed batch labelled by a random teacher, on the CPU
// backend, for 50 steps of Plan.Record + Step + ZeroGrad + one Sync, with
// BLIP's optimiser and with LAVIS's exemptions, clipping and the warmup and
// step-decay schedule; the loss must fall.
func TestTrainMLP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func() Config
		sched Schedule
	}{
		{"blip", func() Config {
			c := DefaultConfig()
			c.LR = 1e-2
			return c
		}, nil},
		{"lavis-clip-schedule", func() Config {
			c := DefaultConfig()
			c.ExemptBiasNorm, c.MaxGradNorm = true, 1
			return c
		}, StepDecay{WarmupLR: 1e-3, InitLR: 2e-2, MinLR: 1e-4, WarmupSteps: 5, Rate: 0.8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := cpu.New()
			defer be.Close()
			const B, D, H, K = 32, 8, 16, 4
			ps := graph.NewParams()
			mk := func(name string, shape ...int) *graph.Param {
				p, err := ps.New(name, shape...)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			w1, b1 := mk("fc1.weight", H, D), mk("fc1.bias", H)
			lnw, lnb := mk("LayerNorm.weight", H), mk("LayerNorm.bias", H)
			w2, b2 := mk("fc2.weight", K, H), mk("fc2.bias", K)
			if err := ps.Alloc(be); err != nil {
				t.Fatal(err)
			}
			defer ps.Free()
			rng := rand.New(rand.NewPCG(13, 13))
			for _, p := range []*graph.Param{w1, w2} {
				if err := p.Write(randVec(rng, p.Numel(), 0.3)); err != nil {
					t.Fatal(err)
				}
			}
			ones := make([]float32, H)
			for i := range ones {
				ones[i] = 1
			}
			if err := lnw.Write(ones); err != nil {
				t.Fatal(err)
			}

			g := graph.New()
			x := g.Input("x", gpu.F32, B, D)
			labels := g.Input("labels", gpu.I32, B)
			P := g.Param
			h := g.GELU(g.LayerNorm(g.Linear(x, P(w1), P(b1)), P(lnw), P(lnb), 1e-5))
			loss := g.CrossEntropy(g.Linear(h, P(w2), P(b2)), labels, 0)
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			plan, err := g.Compile(be, graph.Config{Loss: loss})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()

			xs := randVec(rng, B*D, 1)
			teacher := randVec(rng, K*D, 1)
			ys := make([]int32, B)
			for b := range B {
				best := float32(-1e30)
				for k := range K {
					var s float32
					for d := range D {
						s += xs[b*D+d] * teacher[k*D+d]
					}
					if s > best {
						best, ys[b] = s, int32(k)
					}
				}
			}
			if err := plan.WriteF32(x, xs); err != nil {
				t.Fatal(err)
			}
			if err := plan.WriteI32(labels, ys); err != nil {
				t.Fatal(err)
			}

			opt, err := New(ps, tc.cfg())
			if err != nil {
				t.Fatal(err)
			}
			defer opt.Free()
			if err := ps.ZeroGrad(); err != nil {
				t.Fatal(err)
			}
			const steps, perEpoch = 50, 10
			var first, last float32
			l := make([]float32, 1)
			for i := range steps {
				if tc.sched != nil {
					if err := opt.SetLR(tc.sched.LR(i/perEpoch, i%perEpoch)); err != nil {
						t.Fatal(err)
					}
				}
				if err := plan.Record(); err != nil {
					t.Fatal(err)
				}
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
				if err := ps.ZeroGrad(); err != nil {
					t.Fatal(err)
				}
				if err := be.Sync(); err != nil {
					t.Fatal(err)
				}
				if err := plan.ReadF32(loss, l); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = l[0]
				}
				last = l[0]
				if i%10 == 0 {
					t.Logf("step %d: lr %.2g loss %.4f grad norm %.3g", i, opt.LR(), l[0], opt.GradNorm())
				}
			}
			t.Logf("loss %.4f -> %.4f", first, last)
			if !(last < 0.3*first) {
				t.Errorf("loss went from %.4f to %.4f: not learning", first, last)
			}
		})
	}
}
