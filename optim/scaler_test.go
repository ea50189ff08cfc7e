package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"blip/gpu"
	"blip/graph"
)

// TestScalerSchedule walks the growth and backoff rules: S doubles after
// GrowthInterval consecutive finite steps (and the count restarts), halves
// on every non-finite one (which also restarts the count), never grows
// past MaxLossScale, and a backoff below MinScale is an error that leaves
// S alone.
func TestScalerSchedule(t *testing.T) {
	s, err := NewScaler(DefaultScalerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s.Scale() != 65536 {
		t.Fatalf("initial scale %g, want GradScaler's 2^16", s.Scale())
	}
	for i := range 1999 {
		if err := s.update(true); err != nil {
			t.Fatal(err)
		}
		if s.Scale() != 65536 || s.GoodSteps() != int64(i+1) {
			t.Fatalf("after %d good steps: scale %g, good %d", i+1, s.Scale(), s.GoodSteps())
		}
	}
	if err := s.update(true); err != nil {
		t.Fatal(err)
	}
	if s.Scale() != 131072 || s.GoodSteps() != 0 {
		t.Fatalf("after 2000 good steps: scale %g, good %d, want 2^17 and 0", s.Scale(), s.GoodSteps())
	}

	cfg := DefaultScalerConfig()
	cfg.InitScale, cfg.GrowthInterval = 8, 3
	s, err = NewScaler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Outcomes and the scale after each.
	for i, c := range []struct {
		finite bool
		scale  float64
		good   int64
	}{
		{true, 8, 1}, {true, 8, 2}, {false, 4, 0}, // a skip restarts the count
		{true, 4, 1}, {true, 4, 2}, {true, 8, 0}, // grown after 3
		{false, 4, 0}, {false, 2, 0}, {false, 1, 0}, // down to the floor
		{true, 1, 1},
	} {
		if err := s.update(c.finite); err != nil {
			t.Fatalf("outcome %d: %v", i, err)
		}
		if s.Scale() != c.scale || s.GoodSteps() != c.good {
			t.Fatalf("outcome %d (finite %v): scale %g good %d, want %g and %d", i, c.finite, s.Scale(), s.GoodSteps(), c.scale, c.good)
		}
	}
	if s.Skipped() != 4 {
		t.Errorf("skipped %d, want 4", s.Skipped())
	}
	err = s.update(false)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "floor") {
		t.Fatalf("a backoff below the floor: %v, want ErrNonFinite naming the floor", err)
	}
	if s.Scale() != 1 {
		t.Errorf("the refused backoff moved the scale to %g", s.Scale())
	}

	cfg = DefaultScalerConfig()
	cfg.InitScale, cfg.GrowthInterval = MaxLossScale/2, 1
	s, err = NewScaler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.update(true); err != nil {
			t.Fatal(err)
		}
	}
	if s.Scale() != MaxLossScale {
		t.Errorf("scale grew to %g, want it held at 2^126", s.Scale())
	}

	for _, c := range []struct {
		edit func(*ScalerConfig)
		want string
	}{
		{func(c *ScalerConfig) { c.InitScale = 0.5 }, "InitScale"},
		{func(c *ScalerConfig) { c.InitScale = math.Inf(1) }, "InitScale"},
		{func(c *ScalerConfig) { c.GrowthFactor = 1 }, "GrowthFactor"},
		{func(c *ScalerConfig) { c.BackoffFactor = 1 }, "BackoffFactor"},
		{func(c *ScalerConfig) { c.GrowthInterval = 0 }, "GrowthInterval"},
		{func(c *ScalerConfig) { c.MinScale = 0 }, "MinScale"},
	} {
		cfg := DefaultScalerConfig()
		c.edit(&cfg)
		if _, err := NewScaler(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", cfg, err, c.want)
		}
	}
}

// scaledRun takes steps AdamW steps over a fresh test set from the same
// gradients; with a scaler (GrowthInterval 1, so that S doubles every
// step) it writes them multiplied by the scale of that step, as a backward
// seeded with S leaves them. It returns the parameters, the optimiser
// state (the scaler's keys left out) and the gradient norm of each step.
func scaledRun(t *testing.T, be gpu.Backend, cfg Config, initScale float64, steps int) (map[string][]float32, map[string]StateTensor, []float64) {
	t.Helper()
	ps := newSet(t, be, 21)
	opt, err := New(ps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Free()
	var sc *Scaler
	if initScale > 0 {
		c := DefaultScalerConfig()
		c.InitScale, c.GrowthInterval = initScale, 1
		if sc, err = NewScaler(c); err != nil {
			t.Fatal(err)
		}
		opt.SetScaler(sc)
	}
	rng := rand.New(rand.NewPCG(22, 22))
	var norms []float64
	for i := range steps {
		s := float32(1)
		if sc != nil {
			s = float32(sc.Scale())
			if want := initScale * math.Pow(2, float64(i)); float64(s) != want {
				t.Fatalf("step %d: scale %g, want %g", i, s, want)
			}
		}
		for _, p := range ps.List() {
			g := randVec(rng, p.Numel(), 1)
			for j := range g {
				g[j] *= s
			}
			if err := p.WriteGrad(g); err != nil {
				t.Fatal(err)
			}
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if opt.Skipped() {
			t.Fatalf("step %d skipped", i)
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}
		norms = append(norms, opt.GradNorm())
	}
	vals := map[string][]float32{}
	for _, p := range ps.List() {
		vals[p.Name()] = read(t, p)
	}
	st, err := opt.State()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{KeyLossScale, KeyGrowthTracker, KeySkipped} {
		if _, ok := st[k]; ok != (sc != nil) {
			t.Fatalf("state has %s: %v, with a scaler: %v", k, ok, sc != nil)
		}
		delete(st, k)
	}
	return vals, st, norms
}

// TestScaledStepEqualsUnscaled: AdamW over gradients that carry a scale S
// = 2^k (and a Scaler that unscales them) must give the same parameters,
// moments and gradient norms as over the plain gradients, bit for bit,
// with clipping off and on (a limit the gradients exceed, so that clipping
// acts: it must act on the unscaled norm, or the steps differ). Bitwise is
// the right test, not a tolerance: g*2^k is exact in fp32, the squares and
// their sums are exactly 2^2k times the plain ones, and the kernel's
// product (S*g) * (c/S) has the exact value g*c of the plain path's
// product, so both round to the same float.
func TestScaledStepEqualsUnscaled(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		for _, maxNorm := range []float64{0, 2} {
			cfg := DefaultConfig()
			cfg.LR, cfg.MaxGradNorm = 1e-2, maxNorm
			// A large eps keeps AdamW from cancelling a gradient scale
			// that was left in: S*g and g would step alike otherwise.
			cfg.Eps = 0.5
			vals, st, norms := scaledRun(t, be, cfg, 0, 3)
			if maxNorm > 0 && !(norms[0] > maxNorm) {
				t.Fatalf("gradient norm %g does not exceed the limit %g: clipping is not tested", norms[0], maxNorm)
			}
			for _, s := range []float64{1, 0x1p16, 0x1p40} {
				v2, st2, n2 := scaledRun(t, be, cfg, s, 3)
				for name, want := range vals {
					if got := v2[name]; !slices.Equal(got, want) {
						t.Fatalf("clip %g, scale %g: %s differs from the unscaled step", maxNorm, s, name)
					}
				}
				for k, want := range st {
					got := st2[k]
					if !slices.Equal(got.F32, want.F32) || !slices.Equal(got.I64, want.I64) {
						t.Fatalf("clip %g, scale %g: state %s differs from the unscaled step", maxNorm, s, k)
					}
				}
				if maxNorm > 0 && !slices.Equal(n2, norms) {
					t.Fatalf("clip %g, scale %g: gradient norms %v, unscaled %v", maxNorm, s, n2, norms)
				}
				if maxNorm == 0 && (len(n2) != 3 || math.IsNaN(n2[0])) {
					t.Fatalf("scale %g without clipping: norms %v, want them measured", s, n2)
				}
			}
		}
	})
}

// TestScalerSkipsNonFinite gives one parameter a +Inf or a NaN gradient:
// Step skips (Skipped, nil error), parameters, moments and step counts
// stay, S halves and the skip is counted; the next finite step applies.
// At the floor the same gradient is an error.
func TestScalerSkipsNonFinite(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		for _, bad := range []float32{float32(math.Inf(1)), float32(math.NaN())} {
			for _, maxNorm := range []float64{0, 1} {
				ps := newSet(t, be, 31)
				cfg := DefaultConfig()
				cfg.LR, cfg.MaxGradNorm = 1e-2, maxNorm
				opt, err := New(ps, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer opt.Free()
				sc, err := NewScaler(DefaultScalerConfig())
				if err != nil {
					t.Fatal(err)
				}
				opt.SetScaler(sc)
				rng := rand.New(rand.NewPCG(32, 32))
				step := func(poison bool) {
					t.Helper()
					writeGrads(t, ps, rng, float64(sc.Scale()), func(j int, g []float32) {
						if poison && j == 3 {
							g[5] = bad
						}
					})
					if err := opt.Step(); err != nil {
						t.Fatal(err)
					}
					if err := be.Sync(); err != nil {
						t.Fatal(err)
					}
				}
				step(false)
				step(false)
				before := map[string][]float32{}
				for _, p := range ps.List() {
					before[p.Name()] = read(t, p)
				}
				st0, err := opt.State()
				if err != nil {
					t.Fatal(err)
				}
				s0 := sc.Scale()
				step(true)
				if !opt.Skipped() {
					t.Fatalf("%g gradient (clip %g): step not skipped", bad, maxNorm)
				}
				if sc.Scale() != s0/2 || sc.Skipped() != 1 || sc.GoodSteps() != 0 {
					t.Fatalf("after the skip: scale %g (was %g), skipped %d, good %d", sc.Scale(), s0, sc.Skipped(), sc.GoodSteps())
				}
				for _, p := range ps.List() {
					if !slices.Equal(read(t, p), before[p.Name()]) {
						t.Fatalf("%s moved on a skipped step", p.Name())
					}
					if n := opt.StepCount(p); n != 2 {
						t.Fatalf("%s: step count %d after a skipped step, want 2", p.Name(), n)
					}
				}
				st1, err := opt.State()
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range st0 {
					if strings.HasPrefix(k, "scaler.") {
						continue
					}
					if !slices.Equal(st1[k].F32, v.F32) || !slices.Equal(st1[k].I64, v.I64) {
						t.Fatalf("%s changed on a skipped step", k)
					}
				}
				if st1[KeyLossScale].F32[0] != float32(s0/2) || st1[KeySkipped].I64[0] != 1 {
					t.Fatalf("state after the skip: %v %v", st1[KeyLossScale], st1[KeySkipped])
				}
				step(false)
				if opt.Skipped() || opt.StepCount(ps.List()[0]) != 3 {
					t.Fatalf("the finite step after a skip: skipped %v, step count %d", opt.Skipped(), opt.StepCount(ps.List()[0]))
				}
			}
		}

		// At the floor: an error, and nothing moves.
		ps := newSet(t, be, 33)
		opt, err := New(ps, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer opt.Free()
		c := DefaultScalerConfig()
		c.InitScale = c.MinScale
		sc, err := NewScaler(c)
		if err != nil {
			t.Fatal(err)
		}
		opt.SetScaler(sc)
		before := read(t, ps.List()[0])
		for _, p := range ps.List() {
			g := make([]float32, p.Numel())
			g[0] = float32(math.NaN())
			if err := p.WriteGrad(g); err != nil {
				t.Fatal(err)
			}
		}
		if err := opt.Step(); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("a NaN gradient at the floor: %v, want ErrNonFinite", err)
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(read(t, ps.List()[0]), before) || opt.StepCount(ps.List()[0]) != 0 {
			t.Fatal("a refused step moved the parameters")
		}
	})
}

// TestScalerState: the scaler's state goes through State and Load (via a
// safetensors file, as in a checkpoint); state without scaler entries
// leaves an attached scaler at its own; incomplete scaler state is refused
// before anything is written.
func TestScalerState(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		newOpt := func(init float64) (*graph.Params, *AdamW, *Scaler) {
			ps := newSet(t, be, 41)
			opt, err := New(ps, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(opt.Free)
			c := DefaultScalerConfig()
			c.InitScale, c.GrowthInterval = init, 5
			sc, err := NewScaler(c)
			if err != nil {
				t.Fatal(err)
			}
			opt.SetScaler(sc)
			return ps, opt, sc
		}
		ps, opt, sc := newOpt(1024)
		rng := rand.New(rand.NewPCG(42, 42))
		for i := range 4 {
			writeGrads(t, ps, rng, float64(sc.Scale()), func(j int, g []float32) {
				if i == 1 && j == 0 {
					g[0] = float32(math.Inf(-1))
				}
			})
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
		}
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}
		if sc.Scale() != 512 || sc.GoodSteps() != 2 || sc.Skipped() != 1 {
			t.Fatalf("scale %g good %d skipped %d, want 512, 2, 1", sc.Scale(), sc.GoodSteps(), sc.Skipped())
		}
		st, err := opt.State()
		if err != nil {
			t.Fatal(err)
		}
		st = viaSafetensors(t, st)

		_, opt2, sc2 := newOpt(65536)
		if err := opt2.Load(st); err != nil {
			t.Fatal(err)
		}
		if sc2.Scale() != sc.Scale() || sc2.GoodSteps() != sc.GoodSteps() || sc2.Skipped() != sc.Skipped() {
			t.Errorf("loaded scale %g good %d skipped %d, saved %g %d %d",
				sc2.Scale(), sc2.GoodSteps(), sc2.Skipped(), sc.Scale(), sc.GoodSteps(), sc.Skipped())
		}

		old := map[string]StateTensor{}
		for k, v := range st {
			if !strings.HasPrefix(k, "scaler.") {
				old[k] = v
			}
		}
		_, opt3, sc3 := newOpt(65536)
		if err := opt3.Load(old); err != nil {
			t.Fatal(err)
		}
		if sc3.Scale() != 65536 || sc3.GoodSteps() != 0 {
			t.Errorf("state without a scaler: scale %g good %d, want the scaler's own 65536 and 0", sc3.Scale(), sc3.GoodSteps())
		}

		bad := map[string]StateTensor{}
		for k, v := range st {
			bad[k] = v
		}
		delete(bad, KeyGrowthTracker)
		if err := opt3.Load(bad); err == nil || !strings.Contains(err.Error(), KeyGrowthTracker) {
			t.Errorf("scaler state without %s: %v", KeyGrowthTracker, err)
		}
		bad[KeyGrowthTracker] = st[KeyGrowthTracker]
		bad[KeyLossScale] = StateTensor{Shape: []int64{1}, F32: []float32{float32(math.Inf(1))}}
		if err := opt3.Load(bad); err == nil || !strings.Contains(err.Error(), KeyLossScale) {
			t.Errorf("an infinite saved scale: %v", err)
		}
		if sc3.Scale() != 65536 {
			t.Errorf("a refused Load changed the scale to %g", sc3.Scale())
		}
	})
}

// The initial scales a config may set, and the settings built from one.
func TestIsLossScale(t *testing.T) {
	for _, x := range []float64{1, 2, 1024, 0x1p16, MaxLossScale} {
		if !IsLossScale(x) {
			t.Errorf("IsLossScale(%g) = false", x)
		}
	}
	for _, x := range []float64{0, 0.5, 3, 1000, 0x1p127, math.Inf(1), math.NaN(), -2} {
		if IsLossScale(x) {
			t.Errorf("IsLossScale(%g) = true", x)
		}
	}
	if s := ScalerFrom(0); s != DefaultScalerConfig() {
		t.Errorf("ScalerFrom(0) = %+v, want the default", s)
	}
	if s := ScalerFrom(4096); s.InitScale != 4096 || s.GrowthInterval != DefaultScalerConfig().GrowthInterval {
		t.Errorf("ScalerFrom(4096) = %+v", s)
	}
}
