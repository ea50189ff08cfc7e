package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// TestLowActivations checks Config.LowActivations on both backends, on
// pre-norm sublayers (attention over a fused qkv projection, read in place;
// attention over three projections; cross-attention over keys and values
// that are plan inputs; an MLP) followed by a LayerNorm whose output a
// linear layer and an add both read: under f16 weights exactly the twelve
// activations that only linear layers or attention read (the four norms'
// outputs feeding projections, the qkv projection's, the three
// projections', the three attention outputs, the MLP's hidden layer; not
// the cross-attention's query, whose keys stay fp32) are stored in 16 bits,
// none over fewer than lowMinRows rows, and
// the outputs equal the fp32-activation plan's bit for bit (the products
// round them to f16 anyway); under bf16 weights the same twelve are stored
// in bf16, which moves the outputs by about bf16's resolution; under f32
// weights nothing is lowered.
func TestLowActivations(t *testing.T) {
	backends := map[string]gpu.Backend{"cpu": cpu.New()}
	defer backends["cpu"].Close()
	backends["vulkan"] = openVulkan(t)
	for name, be := range backends {
		for _, dt := range []gpu.DType{gpu.F16, gpu.BF16, gpu.F32} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) { testLowActivations(t, be, dt) })
		}
	}
}

func testLowActivations(t *testing.T, be gpu.Backend, dt gpu.DType) {
	const c, hid = 64, 132
	rows := 70
	r := rand.New(rand.NewPCG(7, uint64(dt)))
	ps := NewParams()
	shapes := []struct {
		name  string
		shape []int
		scale float64
		mean  float64
	}{
		{"ln1.g", []int{c}, 0.2, 1}, {"ln1.b", []int{c}, 0.2, 0},
		{"fc1.w", []int{hid, c}, 0.2, 0}, {"fc1.b", []int{hid}, 0.1, 0},
		{"fc2.w", []int{c, hid}, 0.1, 0}, {"fc2.b", []int{c}, 0.1, 0},
		{"ln2.g", []int{c}, 0.2, 1}, {"ln2.b", []int{c}, 0.2, 0},
		{"out.w", []int{c, c}, 0.2, 0},
		{"ln0.g", []int{c}, 0.2, 1}, {"ln0.b", []int{c}, 0.2, 0},
		{"qkv.w", []int{3 * c, c}, 0.3, 0},
		{"o.w", []int{c, c}, 0.2, 0}, {"o.b", []int{c}, 0.1, 0},
		{"lnb.g", []int{c}, 0.2, 1}, {"lnb.b", []int{c}, 0.2, 0},
		{"qb.w", []int{c, c}, 0.3, 0}, {"kb.w", []int{c, c}, 0.3, 0}, {"vb.w", []int{c, c}, 0.2, 0}, {"ob.w", []int{c, c}, 0.2, 0},
		{"lnx.g", []int{c}, 0.2, 1}, {"lnx.b", []int{c}, 0.2, 0},
		{"qx.w", []int{c, c}, 0.3, 0}, {"ox.w", []int{c, c}, 0.2, 0},
	}
	p := map[string]*Param{}
	for _, s := range shapes {
		v, err := ps.New(s.name, s.shape...)
		if err != nil {
			t.Fatal(err)
		}
		p[s.name] = v
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	defer ps.Free()
	for _, s := range shapes {
		v := make([]float32, Shape(s.shape).Numel())
		for i := range v {
			v[i] = float32(s.mean + r.NormFloat64()*s.scale)
		}
		if err := p[s.name].Write(v); err != nil {
			t.Fatal(err)
		}
	}
	if dt != gpu.F32 {
		if err := ps.SetStorage(dt); err != nil {
			t.Fatal(err)
		}
	}
	xv := make([]float32, rows*c)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	mv := make([]float32, 11*c)
	for i := range mv {
		mv[i] = float32(r.NormFloat64())
	}

	run := func(low bool) ([]float32, Stats) {
		t.Helper()
		g := New()
		x := g.Input("x", gpu.F32, 1, rows, c)
		mem := g.Input("mem", gpu.F32, 1, 11, c)
		h0 := g.LayerNorm(x, g.Param(p["ln0.g"]), g.Param(p["ln0.b"]), 1e-5)
		qkv := g.Linear(h0, g.Param(p["qkv.w"]), nil)
		att := g.Attention(g.Slice(qkv, 2, 0, c), g.Slice(qkv, 2, c, 2*c), g.Slice(qkv, 2, 2*c, 3*c), AttentionOpts{Heads: 4})
		x = g.Add(x, g.Linear(att, g.Param(p["o.w"]), g.Param(p["o.b"])))
		// BERT's self-attention: three projections.
		hb := g.LayerNorm(x, g.Param(p["lnb.g"]), g.Param(p["lnb.b"]), 1e-5)
		proj := func(name string, in *Tensor) *Tensor { return g.Linear(in, g.Param(p[name]), nil) }
		att = g.Attention(proj("qb.w", hb), proj("kb.w", hb), proj("vb.w", hb), AttentionOpts{Heads: 4})
		x = g.Add(x, proj("ob.w", att))
		// Cross-attention over keys and values from outside the plan:
		// its query projection cannot be lowered alone.
		hx := g.LayerNorm(x, g.Param(p["lnx.g"]), g.Param(p["lnx.b"]), 1e-5)
		att = g.Attention(proj("qx.w", hx), mem, mem, AttentionOpts{Heads: 4})
		x = g.Add(x, proj("ox.w", att))
		h := g.LayerNorm(x, g.Param(p["ln1.g"]), g.Param(p["ln1.b"]), 1e-5)
		a := g.LinearAct(h, g.Param(p["fc1.w"]), g.Param(p["fc1.b"]), gpu.ActGELU)
		x = g.Add(x, g.Linear(a, g.Param(p["fc2.w"]), g.Param(p["fc2.b"])))
		z := g.LayerNorm(x, g.Param(p["ln2.g"]), g.Param(p["ln2.b"]), 1e-5)
		out := g.Add(g.Linear(z, g.Param(p["out.w"]), nil), z)
		plan, err := g.Compile(be, Config{Outputs: []*Tensor{out}, LowActivations: low})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		if err := plan.WriteF32(g.tensors[0], xv); err != nil {
			t.Fatal(err)
		}
		if err := plan.WriteF32(mem, mv); err != nil {
			t.Fatal(err)
		}
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, rows*c)
		if err := plan.ReadF32(out, got); err != nil {
			t.Fatal(err)
		}
		return got, plan.Stats()
	}
	full, fs := run(false)
	low, ls := run(true)
	wantLow := 12
	if dt == gpu.F32 {
		wantLow = 0
	}
	if fs.LowActivations != 0 || ls.LowActivations != wantLow {
		t.Fatalf("16-bit activations: %d without LowActivations, %d with, want 0 and %d", fs.LowActivations, ls.LowActivations, wantLow)
	}
	if wantLow > 0 && ls.TensorBytes >= fs.TensorBytes {
		t.Errorf("tensor bytes %d with 16-bit activations, %d without", ls.TensorBytes, fs.TensorBytes)
	}
	var diff, scale float64
	same := true
	for i := range full {
		diff = math.Max(diff, math.Abs(float64(low[i])-float64(full[i])))
		scale = math.Max(scale, math.Abs(float64(full[i])))
		same = same && math.Float32bits(low[i]) == math.Float32bits(full[i])
	}
	t.Logf("%s weights: max |low - full| %.3g (scale %.3g)", dt, diff, scale)
	switch dt {
	case gpu.F16, gpu.F32:
		if !same {
			t.Errorf("outputs differ from the fp32-activation plan's by up to %.3g", diff)
		}
	case gpu.BF16:
		// A dozen bf16 roundings (2^-9 relative each) on the way to the
		// output: a few units of bf16 at the output's scale, not zero.
		if diff == 0 || diff > 8*scale/256 {
			t.Errorf("bf16 activations move the outputs by %.3g (scale %.3g): want more than 0, at most %.3g", diff, scale, 8*scale/256)
		}
	}
	// Few rows (a short question's encoder): weight-bound products keep
	// their fp32 inputs.
	rows, xv = 20, xv[:20*c]
	if _, st := run(true); st.LowActivations != 0 {
		t.Errorf("%d activations in 16 bits over %d rows, want none", st.LowActivations, rows)
	}
}

// TestLowActivationsTraining checks Config.LowActivations in training
// plans on both backends: under f16 weights (mixed precision, every
// product of a linear layer and of attention in f16) the activations that
// only linear layers and their weight gradients, or attention and its
// backward, read (the norms' outputs, the qkv projection's, the MLP's GELU
// output; not attention's output, whose backward reads it in fp32) are
// stored in f16, and the loss, the input's gradient and
// every parameter gradient equal those of the fp32-activation plan bit for
// bit; under bf16 weights (fp32 products) nothing is lowered.
func TestLowActivationsTraining(t *testing.T) {
	backends := map[string]gpu.Backend{"cpu": cpu.New()}
	defer backends["cpu"].Close()
	backends["vulkan"] = openVulkan(t)
	for name, be := range backends {
		for _, dt := range []gpu.DType{gpu.F16, gpu.BF16} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) { testLowActivationsTraining(t, be, dt) })
		}
	}
}

func testLowActivationsTraining(t *testing.T, be gpu.Backend, dt gpu.DType) {
	const rows, c, hid = 70, 32, 68
	r := rand.New(rand.NewPCG(11, uint64(dt)))
	ps := NewParams()
	names := []string{"ln1.g", "ln1.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b", "ln2.g", "ln2.b", "out.w", "ln0.g", "ln0.b", "qkv.w", "o.w"}
	shapes := [][]int{{c}, {c}, {hid, c}, {hid}, {c, hid}, {c}, {c}, {c}, {c, c}, {c}, {c}, {3 * c, c}, {c, c}}
	p := map[string]*Param{}
	for i, n := range names {
		v, err := ps.New(n, shapes[i]...)
		if err != nil {
			t.Fatal(err)
		}
		p[n] = v
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	defer ps.Free()
	for i, n := range names {
		v := make([]float32, Shape(shapes[i]).Numel())
		for j := range v {
			v[j] = float32(r.NormFloat64() * 0.3)
		}
		if err := p[n].Write(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.SetStorage(dt); err != nil {
		t.Fatal(err)
	}
	xv := make([]float32, rows*c)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	type result struct {
		loss  []float32
		grads [][]float32 // x's, then the parameters' in names order
		stats Stats
	}
	run := func(low bool) result {
		t.Helper()
		g := New()
		x := g.Input("x", gpu.F32, 1, rows, c)
		h0 := g.LayerNorm(x, g.Param(p["ln0.g"]), g.Param(p["ln0.b"]), 1e-5)
		qkv := g.Linear(h0, g.Param(p["qkv.w"]), nil)
		att := g.Attention(g.Slice(qkv, 2, 0, c), g.Slice(qkv, 2, c, 2*c), g.Slice(qkv, 2, 2*c, 3*c), AttentionOpts{Heads: 2})
		x1 := g.Add(x, g.Linear(att, g.Param(p["o.w"]), nil))
		h := g.LayerNorm(x1, g.Param(p["ln1.g"]), g.Param(p["ln1.b"]), 1e-5)
		a := g.LinearAct(h, g.Param(p["fc1.w"]), g.Param(p["fc1.b"]), gpu.ActGELU)
		y := g.Add(x1, g.Linear(a, g.Param(p["fc2.w"]), g.Param(p["fc2.b"])))
		z := g.LayerNorm(y, g.Param(p["ln2.g"]), g.Param(p["ln2.b"]), 1e-5)
		o := g.Linear(z, g.Param(p["out.w"]), nil)
		loss := g.Sum(g.Mul(o, o))
		plan, err := g.Compile(be, Config{Outputs: []*Tensor{loss}, Loss: loss, GradInputs: []*Tensor{x}, LowActivations: low})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		if err := ps.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := plan.WriteF32(x, xv); err != nil {
			t.Fatal(err)
		}
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		res := result{loss: make([]float32, 1), stats: plan.Stats()}
		if err := plan.ReadF32(loss, res.loss); err != nil {
			t.Fatal(err)
		}
		dx := make([]float32, x.Numel())
		if err := plan.ReadF32(plan.Grad(x), dx); err != nil {
			t.Fatal(err)
		}
		res.grads = append(res.grads, dx)
		for i, n := range names {
			gv := make([]float32, Shape(shapes[i]).Numel())
			if err := p[n].ReadGrad(gv); err != nil {
				t.Fatal(err)
			}
			res.grads = append(res.grads, gv)
		}
		return res
	}
	full, low := run(false), run(true)
	want := 5 // the three norms' outputs, the qkv projection's (attention reads it in place), the GELU's
	if dt == gpu.BF16 {
		want = 0
	}
	if full.stats.LowActivations != 0 || low.stats.LowActivations != want {
		t.Fatalf("16-bit activations: %d without LowActivations, %d with, want 0 and %d", full.stats.LowActivations, low.stats.LowActivations, want)
	}
	if math.Float32bits(low.loss[0]) != math.Float32bits(full.loss[0]) {
		t.Errorf("loss %v with 16-bit activations, %v without", low.loss[0], full.loss[0])
	}
	for i := range full.grads {
		what := "x"
		if i > 0 {
			what = names[i-1]
		}
		for j := range full.grads[i] {
			if math.Float32bits(low.grads[i][j]) != math.Float32bits(full.grads[i][j]) {
				t.Errorf("gradient of %s[%d]: %v with 16-bit activations, %v without", what, j, low.grads[i][j], full.grads[i][j])
				break
			}
		}
	}
	t.Logf("%s weights: loss %v, %d activations in 16 bits", dt, low.loss[0], low.stats.LowActivations)
}
