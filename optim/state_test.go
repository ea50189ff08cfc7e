package optim

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"blip/data/safetensors"
	"blip/gpu"
	"blip/graph"
)

// TestStateRoundTrip trains a few steps, saves the state (through a
// safetensors file) and the weights,
// takes one more step; then loads both into a fresh set and optimiser and
// takes the same step: the results must be bit for bit the same.
func TestStateRoundTrip(t *testing.T) {
	onBackends(t, func(t *testing.T, be gpu.Backend) {
		cfg := DefaultConfig()
		cfg.LR, cfg.ExemptBiasNorm, cfg.MaxGradNorm = 1e-2, true, 2
		rng := rand.New(rand.NewPCG(10, 10))
		grads := func(ps *graph.Params, seed uint64) {
			writeGrads(t, ps, rand.New(rand.NewPCG(seed, 0)), 1, nil)
		}
		step := func(opt *AdamW) {
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
			if err := be.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		ps := newSet(t, be, 11)
		opt, err := New(ps, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer opt.Free()
		for i := range 4 {
			grads(ps, rng.Uint64()+uint64(i))
			step(opt)
		}
		st, err := opt.State()
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 3*len(testSet) {
			t.Errorf("state has %d tensors, want %d", len(st), 3*len(testSet))
		}
		if s := st["enc.weight"+KeyStep]; len(s.I64) != 1 || s.I64[0] != 4 {
			t.Errorf("saved step %v, want [4]", s.I64)
		}
		weights := map[string][]float32{}
		for _, p := range ps.List() {
			weights[p.Name()] = read(t, p)
		}
		grads(ps, 99)
		step(opt)

		ps2 := newSet(t, be, 12)
		for _, p := range ps2.List() {
			if err := p.Write(weights[p.Name()]); err != nil {
				t.Fatal(err)
			}
		}
		opt2, err := New(ps2, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer opt2.Free()
		if err := opt2.Load(viaSafetensors(t, st)); err != nil {
			t.Fatal(err)
		}
		grads(ps2, 99)
		step(opt2)
		for _, p := range ps.List() {
			a, b := read(t, p), read(t, ps2.Get(p.Name()))
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%s[%d]: %g after resuming, %g without", p.Name(), i, b[i], a[i])
				}
			}
			if n := opt2.StepCount(ps2.Get(p.Name())); n != 5 {
				t.Errorf("%s: step count %d after resuming, want 5", p.Name(), n)
			}
		}

		// Incomplete or mismatched state is refused before anything is
		// written.
		bad := map[string]StateTensor{}
		for k, v := range st {
			bad[k] = v
		}
		delete(bad, "proj.bias"+KeyExpAvgSq)
		if err := opt2.Load(bad); err == nil || !strings.Contains(err.Error(), "proj.bias.exp_avg_sq") {
			t.Errorf("missing tensor: %v", err)
		}
		bad["proj.bias"+KeyExpAvgSq] = StateTensor{Shape: []int64{7}, F32: make([]float32, 7)}
		if err := opt2.Load(bad); err == nil || !strings.Contains(err.Error(), "proj.bias.exp_avg_sq") {
			t.Errorf("wrong shape: %v", err)
		}
		if n := opt2.StepCount(ps2.Get("enc.weight")); n != 5 {
			t.Errorf("a refused Load changed the step count to %d", n)
		}
	})
}

// viaSafetensors writes the state to a safetensors file and reads it back,
// the way a checkpoint carries it.
func viaSafetensors(t *testing.T, st map[string]StateTensor) map[string]StateTensor {
	t.Helper()
	w := safetensors.NewWriter()
	for name, x := range st {
		var err error
		if x.I64 != nil {
			err = w.AddInt64(name, x.Shape, x.I64)
		} else {
			err = w.AddFloat32(name, x.Shape, x.F32)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "optim.safetensors")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]StateTensor{}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		x := StateTensor{Shape: info.Shape}
		if info.DType == safetensors.I64 {
			x.I64, err = f.Int64(name)
		} else {
			x.F32, err = f.Float32(name)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[name] = x
	}
	return out
}
