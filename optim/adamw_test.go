package optim

import (
	"math"

	"blip/gpu/cpu"
	"math/rand/v2"
	"strings"
	"testing"

	"blip/gpu"
	"blip/graph"
)

// adamwTol bounds the difference from the float64 reference after a few
// steps: the fp32 parameters and moments are rounded once per step (a few
// 1e-8 relative each) and the shaders' sqrt and division are within a few
// ulps, while a wrong formula (eps inside the sqrt, coupled decay, a
// missing bias correction) is off by 1e-4 or more at these rates.
const adamwTol = 5e-6

// TestAdamWMatchesTorch runs a few AdamW steps with changing learning
// rates and random gradients and compares every parameter with refAdamW.
func TestAdamWMatchesTorch(t *testing.T) {
	cases := []struct {
		name   string
		cfg    func() Config
		gscale float64 // gradient magnitude
		exempt map[string]bool
	}{
		{name: "blip", cfg: DefaultConfig, gscale: 1},
		{name: "lavis-exempt", cfg: func() Config {
			c := DefaultConfig()
			c.ExemptBiasNorm = true
			return c
		}, gscale: 1, exempt: map[string]bool{"enc.bias": true, "enc.LayerNorm.weight": true, "proj.bias": true}},
		// Small gradients against a large eps: eps inside the sqrt or
		// without the bias correction would change every update.
		{name: "large-eps", cfg: func() Config {
			c := DefaultConfig()
			c.Eps, c.Beta1, c.Beta2, c.WeightDecay = 1e-3, 0.8, 0.95, 0.3
			return c
		}, gscale: 1e-3},
		{name: "beta1-zero", cfg: func() Config {
			c := DefaultConfig()
			c.Beta1 = 0
			return c
		}, gscale: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onBackends(t, func(t *testing.T, be gpu.Backend) {
				cfg := tc.cfg()
				ps := newSet(t, be, 1)
				opt, err := New(ps, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer opt.Free()
				refs := map[*graph.Param]*refAdamW{}
				for _, p := range ps.List() {
					refs[p] = newRef(read(t, p))
				}
				rng := rand.New(rand.NewPCG(2, 2))
				lrs := []float64{1e-2, 2e-2, 5e-3, 1e-2, 3e-2}
				for step, lr := range lrs {
					if err := opt.SetLR(lr); err != nil {
						t.Fatal(err)
					}
					for _, p := range ps.List() {
						g := randVec(rng, p.Numel(), tc.gscale)
						if step == 1 {
							g[0] = 0 // a zero gradient still decays
						}
						if err := p.WriteGrad(g); err != nil {
							t.Fatal(err)
						}
						wd := cfg.WeightDecay
						if tc.exempt[p.Name()] {
							wd = 0
						}
						refs[p].step1(g, 1, lr, cfg.Beta1, cfg.Beta2, cfg.Eps, wd)
					}
					if err := opt.Step(); err != nil {
						t.Fatal(err)
					}
					if err := be.Sync(); err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range ps.List() {
					near(t, p.Name(), read(t, p), refs[p].p, adamwTol)
					if n := opt.StepCount(p); n != int64(len(lrs)) {
						t.Errorf("%s: step count %d, want %d", p.Name(), n, len(lrs))
					}
				}
			})
		})
	}
}

// TestNoDecayRule checks LAVIS's exemption rule and the groups it makes.
func TestNoDecayRule(t *testing.T) {
	ps := graph.NewParams()
	want := map[string]bool{
		"vision_model.encoder.layers.0.layer_norm1.weight":              true,
		"vision_model.post_layernorm.weight":                            true,
		"text_decoder.bert.embeddings.LayerNorm.weight":                 true,
		"text_decoder.bert.encoder.layer.0.attention.self.query.bias":   true,
		"text_decoder.cls.predictions.bias":                             true,
		"some.scale":                                                    true, // 1-D
		"text_decoder.bert.encoder.layer.0.attention.self.query.weight": false,
		"vision_model.embeddings.class_embedding":                       false, // [1,1,C]
		"vision_model.embeddings.patch_embedding.weight":                false,
	}
	for name := range want {
		shape := []int{4, 4}
		if strings.HasSuffix(name, ".bias") || strings.Contains(name, "scale") || strings.Contains(strings.ToLower(name), "norm") {
			shape = []int{4}
		}
		if strings.Contains(name, "class_embedding") {
			shape = []int{1, 1, 4}
		}
		if _, err := ps.New(name, shape...); err != nil {
			t.Fatal(err)
		}
	}
	// A 2-D parameter named like a norm is exempt by name alone.
	if _, err := ps.New("encoder.norm.weight2d", 4, 4); err != nil {
		t.Fatal(err)
	}
	want["encoder.norm.weight2d"] = true
	for _, p := range ps.List() {
		if got := NoDecay(p); got != want[p.Name()] {
			t.Errorf("NoDecay(%s %v) = %v, want %v", p.Name(), p.Shape(), got, want[p.Name()])
		}
	}
	cfg := DefaultConfig()
	if gs := DecayGroups(ps, cfg); len(gs) != 1 || len(gs[0].Params) != len(want) || gs[0].WeightDecay != 0.05 {
		t.Errorf("default groups: %+v", gs)
	}
	cfg.ExemptBiasNorm = true
	gs := DecayGroups(ps, cfg)
	if len(gs) != 2 || gs[0].Name != "decay" || gs[1].Name != "no_decay" || gs[1].WeightDecay != 0 || gs[0].WeightDecay != 0.05 {
		t.Fatalf("exempt groups: %+v", gs)
	}
	for _, p := range gs[1].Params {
		if !want[p.Name()] {
			t.Errorf("%s exempted", p.Name())
		}
	}
	if len(gs[0].Params)+len(gs[1].Params) != len(want) {
		t.Errorf("groups hold %d+%d params, want %d", len(gs[0].Params), len(gs[1].Params), len(want))
	}
}

// TestGroups checks per-group learning-rate scales and weight decays, and
// that group mistakes are errors.
func TestGroups(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		ps := newSet(t, be, 3)
		list := ps.List()
		groups := []Group{
			{Name: "slow", Params: list[:3], LRScale: 0.1, WeightDecay: 0.5},
			{Name: "fast", Params: list[3:], LRScale: 2, WeightDecay: 0},
		}
		cfg := DefaultConfig()
		opt, err := NewGroups(ps, cfg, groups)
		if err != nil {
			t.Fatal(err)
		}
		defer opt.Free()
		rng := rand.New(rand.NewPCG(4, 4))
		lr := 1e-2
		if err := opt.SetLR(lr); err != nil {
			t.Fatal(err)
		}
		for i, p := range list {
			ref := newRef(read(t, p))
			g := randVec(rng, p.Numel(), 1)
			if err := p.WriteGrad(g); err != nil {
				t.Fatal(err)
			}
			grp := groups[0]
			if i >= 3 {
				grp = groups[1]
			}
			ref.step1(g, 1, lr*grp.LRScale, cfg.Beta1, cfg.Beta2, cfg.Eps, grp.WeightDecay)
			defer func(p *graph.Param, ref *refAdamW) {
				near(t, p.Name(), read(t, p), ref.p, adamwTol)
			}(p, ref)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}

		bad := [][]Group{
			{{Name: "a", Params: list, LRScale: 1}, {Name: "b", Params: list[:1], LRScale: 1}},
			{{Name: "a", Params: list[1:], LRScale: 1}},
			{{Name: "a", Params: list, LRScale: 0}},
			{{Name: "a", Params: list, LRScale: 1, WeightDecay: -1}},
		}
		wantErr := []string{"in groups", "in no group", "LRScale", "WeightDecay"}
		for i, gs := range bad {
			if o, err := NewGroups(ps, cfg, gs); err == nil || !strings.Contains(err.Error(), wantErr[i]) {
				if o != nil {
					o.Free()
				}
				t.Errorf("groups %d: error %v, want one containing %q", i, err, wantErr[i])
			}
		}
	})
}

// TestFrozenUntouched checks that frozen parameters keep their values,
// moments and step counts while the others train, and that unfreezing
// resumes them at their own step count.
func TestFrozenUntouched(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		ps := newSet(t, be, 5)
		cfg := DefaultConfig()
		cfg.LR = 1e-2
		cfg.MaxGradNorm = 1 // the norm must skip frozen parameters too
		opt, err := New(ps, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer opt.Free()
		frozen := ps.Get("proj.weight")
		frozen.Frozen = true
		before := read(t, frozen)
		rng := rand.New(rand.NewPCG(6, 6))
		for range 3 {
			writeGrads(t, ps, rng, 1, nil)
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
			if err := be.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		after := read(t, frozen)
		for i := range before {
			if before[i] != after[i] {
				t.Fatalf("frozen %s[%d] changed: %g -> %g", frozen.Name(), i, before[i], after[i])
			}
		}
		if n := opt.StepCount(frozen); n != 0 {
			t.Errorf("frozen step count %d", n)
		}
		st, err := opt.State()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range st[frozen.Name()+KeyExpAvg].F32 {
			if x != 0 {
				t.Fatalf("frozen param has a first moment %g", x)
			}
		}
		if n := opt.StepCount(ps.Get("enc.weight")); n != 3 {
			t.Errorf("trained step count %d, want 3", n)
		}

		// Unfrozen, it takes its first step (bias corrections of step 1)
		// while the others take their fourth.
		frozen.Frozen = false
		ref := newRef(after)
		g := randVec(rng, frozen.Numel(), 1)
		if err := frozen.WriteGrad(g); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps.List() {
			if p != frozen {
				if err := p.WriteGrad(make([]float32, p.Numel())); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}
		var sq float64
		for _, x := range g {
			sq += float64(x) * float64(x)
		}
		ref.step1(g, min(1, cfg.MaxGradNorm/(sqrt(sq)+1e-6)), cfg.LR, cfg.Beta1, cfg.Beta2, cfg.Eps, cfg.WeightDecay)
		near(t, frozen.Name(), read(t, frozen), ref.p, adamwTol)
		if n := opt.StepCount(frozen); n != 1 {
			t.Errorf("unfrozen step count %d, want 1", n)
		}
	})
}

// TestConfigErrors checks that bad settings are errors naming them.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.LR = 0 }, "LR"},
		{func(c *Config) { c.LR = -1e-4 }, "LR"},
		{func(c *Config) { c.Beta1 = 1 }, "Beta1"},
		{func(c *Config) { c.Beta1 = -0.1 }, "Beta1"},
		{func(c *Config) { c.Beta2 = 1.5 }, "Beta2"},
		{func(c *Config) { c.Eps = 0 }, "Eps"},
		{func(c *Config) { c.WeightDecay = -0.05 }, "WeightDecay"},
		{func(c *Config) { c.MaxGradNorm = -1 }, "MaxGradNorm"},
	}
	ps := graph.NewParams()
	if _, err := ps.New("w", 2, 2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.set(&c)
		_, err := New(ps, c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %+v: error %v, want one naming %s", c, err, tc.want)
		}
	}
	if _, err := New(ps, DefaultConfig()); err == nil || !strings.Contains(err.Error(), "not allocated") {
		t.Errorf("unallocated params: error %v", err)
	}
}

// TestSetLRAndFree checks SetLR's range and that a freed optimiser refuses
// to step.
func TestSetLRAndFree(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	ps := newSet(t, be, 14)
	opt, err := New(ps, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, lr := range []float64{-1e-5, math.Inf(1), math.NaN()} {
		if err := opt.SetLR(lr); err == nil || !strings.Contains(err.Error(), "lr") {
			t.Errorf("SetLR(%g): %v", lr, err)
		}
	}
	if err := opt.SetLR(0); err != nil || opt.LR() != 0 {
		t.Errorf("SetLR(0): %v, LR %g", err, opt.LR())
	}
	opt.Free()
	if err := opt.Step(); err == nil {
		t.Error("Step after Free succeeded")
	}
}
