package graph

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// countingBackend counts what a plan asks of its backend.
type countingBackend struct {
	gpu.Backend
	allocs, dos, syncs, calls int
}

func (c *countingBackend) Alloc(n int64) (gpu.Buffer, error) {
	c.allocs++
	return c.Backend.Alloc(n)
}

func (c *countingBackend) Do(calls ...gpu.Call) error {
	c.dos++
	c.calls += len(calls)
	return c.Backend.Do(calls...)
}

func (c *countingBackend) Sync() error {
	c.syncs++
	return c.Backend.Sync()
}

func randData(rng *rand.Rand, n int, scale float64) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(scale * rng.NormFloat64())
	}
	return d
}

// mlp is a small classifier: x (B, T, C) -> LN -> Linear+GELU -> Linear ->
// cross-entropy against labels.
type mlp struct {
	ps                     *Params
	w1, b1, w2, b2, lg, lb *Param
}

func newMLP(t *testing.T, be gpu.Backend, c, h, classes int, seed uint64) *mlp {
	t.Helper()
	m := &mlp{ps: NewParams()}
	var err error
	mk := func(name string, shape ...int) *Param {
		p, e := m.ps.New(name, shape...)
		if e != nil && err == nil {
			err = e
		}
		return p
	}
	m.lg, m.lb = mk("ln.weight", c), mk("ln.bias", c)
	m.w1, m.b1 = mk("fc1.weight", h, c), mk("fc1.bias", h)
	m.w2, m.b2 = mk("fc2.weight", classes, h), mk("fc2.bias", classes)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, p := range m.ps.List() {
		d := randData(rng, p.Numel(), 0.3)
		if p == m.lg {
			for i := range d {
				d[i] += 1
			}
		}
		if err := p.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (m *mlp) build(g *Graph, x, labels *Tensor) (logits, loss *Tensor) {
	h := g.LayerNorm(x, g.Param(m.lg), g.Param(m.lb), 1e-5)
	h = g.LinearAct(h, g.Param(m.w1), g.Param(m.b1), gpu.ActGELU)
	logits = g.Linear(h, g.Param(m.w2), g.Param(m.b2))
	return logits, g.CrossEntropy(logits, labels, 0.1)
}

func readGrads(t *testing.T, ps *Params) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, p := range ps.List() {
		d := make([]float32, p.Numel())
		if err := p.ReadGrad(d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func maxRelDiff(a, b []float32) float64 {
	scale, worst := 1e-30, 0.0
	for i := range a {
		scale = math.Max(scale, math.Abs(float64(b[i])))
		worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst / scale
}

// TestReplayNoAlloc: a compiled plan runs with exactly one Do and one Sync,
// allocates nothing, gives the same result every time, and parameter
// gradients accumulate across runs until ZeroGrad.
func TestReplayNoAlloc(t *testing.T) {
	be := &countingBackend{Backend: cpu.New()}
	defer be.Close()
	m := newMLP(t, be, 8, 16, 5, 1)
	g := New()
	x := g.Input("x", gpu.F32, 2, 3, 8)
	labels := g.Input("labels", gpu.I32, 2, 3)
	_, loss := m.build(g, x, labels)
	plan, err := g.Compile(be, Config{Loss: loss})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	if err := plan.WriteF32(x, randData(rng, 48, 1)); err != nil {
		t.Fatal(err)
	}
	if err := plan.WriteI32(labels, []int32{0, 4, -100, 2, 2, 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.ps.ZeroGrad(); err != nil {
		t.Fatal(err)
	}

	allocs := be.allocs
	var losses []float32
	var grads [][][]float32
	for run := range 3 {
		dos, syncs := be.dos, be.syncs
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		if be.dos-dos != 1 || be.syncs-syncs != 1 {
			t.Errorf("run %d: %d Do and %d Sync calls, want 1 and 1", run, be.dos-dos, be.syncs-syncs)
		}
		l := make([]float32, 1)
		if err := plan.ReadF32(loss, l); err != nil {
			t.Fatal(err)
		}
		losses = append(losses, l[0])
		grads = append(grads, readGrads(t, m.ps))
	}
	if be.allocs != allocs {
		t.Errorf("replaying the plan allocated %d buffers", be.allocs-allocs)
	}
	if losses[0] != losses[1] || losses[1] != losses[2] {
		t.Errorf("losses differ between runs: %v", losses)
	}
	for i := range grads[0] {
		for j, g1 := range grads[0][i] {
			if g3 := grads[2][i][j]; math.Abs(float64(g3-3*g1)) > 1e-5*(1+math.Abs(float64(3*g1))) {
				t.Fatalf("param %d element %d: gradient %g after 3 runs, %g after 1: does not accumulate", i, j, g3, g1)
			}
		}
	}
	if err := m.ps.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	if err := plan.Run(); err != nil {
		t.Fatal(err)
	}
	again := readGrads(t, m.ps)
	for i := range again {
		if d := maxRelDiff(again[i], grads[0][i]); d != 0 {
			t.Errorf("param %d: gradient after ZeroGrad differs from the first run's by %g", i, d)
		}
	}
	t.Logf("stats %+v", plan.Stats())
}

// TestZeroGradClearsNaN: ZeroGrad must not multiply by zero (NaN*0 = NaN).
func TestZeroGradClearsNaN(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	ps := NewParams()
	p, _ := ps.New("w", 3, 1000)
	q, _ := ps.New("b", 7)
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	bad := make([]float32, 3000)
	for i := range bad {
		bad[i] = float32(math.NaN())
	}
	if err := p.WriteGrad(bad); err != nil {
		t.Fatal(err)
	}
	if err := q.WriteGrad([]float32{1, 2, float32(math.Inf(1)), 4, 5, 6, 7}); err != nil {
		t.Fatal(err)
	}
	if err := ps.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	for _, g := range readGrads(t, ps) {
		for i, v := range g {
			if v != 0 {
				t.Fatalf("element %d is %g after ZeroGrad", i, v)
			}
		}
	}
}

// TestSharedParams: a parameter used by several ops (tied weights) gets the
// sum of the gradients of its uses; a frozen one gets none while gradients
// still flow through it.
func TestSharedParams(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	wv, xv := randData(rng, 36, 0.5), randData(rng, 12, 1)

	// Tied: y = W (W x) + Embedding(W, ids).
	tied := NewParams()
	w, _ := tied.New("w", 6, 6)
	if err := tied.Alias("decoder.weight", w); err != nil {
		t.Fatal(err)
	}
	// Untied twins holding the same values.
	sep := NewParams()
	w1, _ := sep.New("w1", 6, 6)
	w2, _ := sep.New("w2", 6, 6)
	w3, _ := sep.New("w3", 6, 6)
	for _, ps := range []*Params{tied, sep} {
		if err := ps.Alloc(be); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps.List() {
			if err := p.Write(wv); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tied.Get("decoder.weight") != w {
		t.Fatal("alias does not resolve")
	}
	run := func(a, b, c *Param) {
		g := New()
		x := g.Input("x", gpu.F32, 2, 6)
		ids := g.ConstI32("ids", []int32{5, 0}, 2)
		y := g.Linear(g.Linear(x, g.Param(a), nil), g.Param(b), nil)
		y = g.Add(y, g.Embedding(g.Param(c), ids))
		plan, err := g.Compile(be, Config{Loss: g.Sum(g.Mul(y, y))})
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		if err := plan.WriteF32(x, xv); err != nil {
			t.Fatal(err)
		}
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
	}
	run(w, w, w)
	run(w1, w2, w3)
	got := readGrads(t, tied)[0]
	sum := make([]float32, 36)
	for _, g := range readGrads(t, sep) {
		for i, v := range g {
			sum[i] += v
		}
	}
	if d := maxRelDiff(got, sum); d > 1e-6 {
		t.Errorf("tied gradient differs from the sum of the untied ones by %g", d)
	}

	// Frozen: no gradient for w, but x still gets one.
	frozen := NewParams()
	fw, _ := frozen.New("w", 6, 6)
	fw.Frozen = true
	if err := frozen.Alloc(be); err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(wv); err != nil {
		t.Fatal(err)
	}
	g := New()
	x := g.Input("x", gpu.F32, 2, 6)
	plan, err := g.Compile(be, Config{Loss: g.Sum(g.Linear(x, g.Param(fw), nil)), GradInputs: []*Tensor{x}})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if err := plan.WriteF32(x, xv); err != nil {
		t.Fatal(err)
	}
	if err := plan.Run(); err != nil {
		t.Fatal(err)
	}
	for _, v := range readGrads(t, frozen)[0] {
		if v != 0 {
			t.Fatal("a frozen parameter got a gradient")
		}
	}
	dx := make([]float32, 12)
	if err := plan.ReadF32(plan.Grad(x), dx); err != nil {
		t.Fatal(err)
	}
	// d sum(x W^T) / dx[r, i] = sum_o W[o, i]
	for i := range 6 {
		want := float32(0)
		for o := range 6 {
			want += wv[o*6+i]
		}
		if math.Abs(float64(dx[i]-want)) > 1e-5 || dx[i] != dx[6+i] {
			t.Fatalf("dx[%d] = %g, want %g", i, dx[i], want)
		}
	}
	// With every parameter frozen and no gradient input, there is nothing
	// to train.
	g2 := New()
	x2 := g2.Input("x", gpu.F32, 2, 6)
	if _, err := g2.Compile(be, Config{Loss: g2.Sum(g2.Linear(x2, g2.Param(fw), nil))}); err == nil {
		t.Error("compiling a loss of frozen parameters only succeeded")
	}
}

// deepMLP builds n Linear+GELU layers of width c on x (rows, c).
func deepMLP(t *testing.T, be gpu.Backend, n, rows, c int) (*Graph, *Tensor, *Tensor, *Params) {
	t.Helper()
	ps := NewParams()
	var ws []*Param
	for i := range n {
		w, err := ps.New("layer."+string(rune('a'+i))+".weight", c, c)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	g := New()
	x := g.Input("x", gpu.F32, rows, c)
	h := x
	for _, w := range ws {
		h = g.LinearAct(h, g.Param(w), nil, gpu.ActGELU)
	}
	return g, x, h, ps
}

// TestMemoryReuse: an inference plan keeps about two activations alive at a
// time, whatever the depth; a training plan keeps what the backward pass
// needs, and still reuses the gradients' memory.
func TestMemoryReuse(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	const layers, rows, c = 12, 64, 32
	act := int64(rows * c * 4)
	g, _, y, _ := deepMLP(t, be, layers, rows, c)
	infer, err := g.Compile(be, Config{Outputs: []*Tensor{y}})
	if err != nil {
		t.Fatal(err)
	}
	defer infer.Close()
	si := infer.Stats()
	// The input, the output and one activation being computed from the
	// previous one: at most 4 activations whatever the depth.
	if si.ArenaBytes > 4*act {
		t.Errorf("inference arena %d bytes for %d layers of %d-byte activations", si.ArenaBytes, layers, act)
	}
	train, err := g.Compile(be, Config{Loss: g.Sum(y)})
	if err != nil {
		t.Fatal(err)
	}
	defer train.Close()
	st := train.Stats()
	// The backward pass needs each layer's input and pre-activation (2 per
	// layer); gradients flow through a few buffers reused layer by layer.
	if st.ArenaBytes > (2*layers+4)*act || st.ArenaBytes >= st.TensorBytes {
		t.Errorf("training arena %d bytes for %d bytes of tensors: %d activations of %d bytes", st.ArenaBytes, st.TensorBytes,
			st.ArenaBytes/act, act)
	}
	if st.ArenaBytes <= si.ArenaBytes {
		t.Errorf("training arena (%d) not larger than inference (%d)", st.ArenaBytes, si.ArenaBytes)
	}
	if si.Buffers != 1 || st.Buffers != 1 {
		t.Errorf("%d and %d arena buffers, want one each", si.Buffers, st.Buffers)
	}
	t.Logf("inference %+v", si)
	t.Logf("training  %+v", st)
}

// TestPlace checks the offset assignment on its own: blocks live at the same
// time never overlap, and the arena limit splits into several.
func TestPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	var blocks []*block
	for range 300 {
		f := rng.IntN(100)
		blocks = append(blocks, &block{size: int64(1+rng.IntN(64)) * blockAlign, first: f, last: f + rng.IntN(20)})
	}
	limit := int64(200 * blockAlign)
	sizes := place(blocks, limit)
	for i, a := range blocks {
		if sizes[a.arena] > limit && a.size <= limit {
			t.Fatalf("arena %d of %d bytes exceeds the limit %d", a.arena, sizes[a.arena], limit)
		}
		for _, b := range blocks[i+1:] {
			if a.arena == b.arena && a.overlaps(b) && a.off < b.off+b.size && b.off < a.off+a.size {
				t.Fatalf("blocks %+v and %+v overlap in memory and time", *a, *b)
			}
		}
	}
	if len(sizes) < 2 {
		t.Errorf("%d arenas: the limit did not split", len(sizes))
	}
}

// TestShapeErrors: a bad op records an error naming the op (with its scope)
// and both operands' shapes; later ops do not replace it; Compile returns it.
func TestShapeErrors(t *testing.T) {
	g := New()
	x := g.Input("x", gpu.F32, 2, 3, 4)
	ps := NewParams()
	w, _ := ps.New("fc.weight", 5, 3)
	restore := g.Scope("encoder.layer.0")
	y := g.Linear(x, g.Param(w), nil)
	restore()
	if y.Valid() || g.Err() == nil {
		t.Fatal("a linear of in-features 3 on x of width 4 built")
	}
	msg := g.Err().Error()
	for _, want := range []string{"encoder.layer.0/linear#", "(2, 3, 4)", "(5, 3)", `input "x"`, `param "fc.weight"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	z := g.GELU(y)
	if z.Valid() || g.Err().Error() != msg {
		t.Errorf("the error changed to %v", g.Err())
	}
	if _, err := g.Compile(cpu.New(), Config{Outputs: []*Tensor{z}}); err == nil || err.Error() != msg {
		t.Errorf("Compile returned %v", err)
	}

	for name, build := range map[string]func(g *Graph) *Tensor{
		"matmul": func(g *Graph) *Tensor {
			return g.MatMul(g.Input("a", gpu.F32, 2, 3, 4), g.Input("b", gpu.F32, 2, 5, 6), false, false)
		},
		"add": func(g *Graph) *Tensor { return g.Add(g.Input("a", gpu.F32, 2, 3), g.Input("b", gpu.F32, 3, 2)) },
		"sub": func(g *Graph) *Tensor { return g.Sub(g.Input("a", gpu.F32, 3), g.Input("b", gpu.F32, 2, 3)) },
		"attention": func(g *Graph) *Tensor {
			q := g.Input("q", gpu.F32, 2, 3, 8)
			return g.Attention(q, g.Input("k", gpu.F32, 2, 4, 6), g.Input("v", gpu.F32, 2, 4, 6), AttentionOpts{Heads: 2})
		},
		"layernorm": func(g *Graph) *Tensor {
			return g.LayerNorm(g.Input("x", gpu.F32, 2, 3), g.Input("g", gpu.F32, 4), g.Input("b", gpu.F32, 4), 1e-5)
		},
		"embedding": func(g *Graph) *Tensor {
			return g.Embedding(g.Input("t", gpu.F32, 4, 3), g.Input("ids", gpu.F32, 2))
		},
		"cross_entropy": func(g *Graph) *Tensor {
			return g.CrossEntropy(g.Input("z", gpu.F32, 4, 3), g.Input("l", gpu.I32, 3), 0)
		},
		"reshape": func(g *Graph) *Tensor { return g.Reshape(g.Input("x", gpu.F32, 2, 3), 4, -1) },
		"slice":   func(g *Graph) *Tensor { return g.Slice(g.Input("x", gpu.F32, 2, 3), 1, 2, 5) },
		"concat":  func(g *Graph) *Tensor { return g.Concat(0, g.Input("a", gpu.F32, 2, 3), g.Input("b", gpu.F32, 2, 4)) },
		"permute": func(g *Graph) *Tensor { return g.Permute(g.Input("x", gpu.F32, 2, 3), 0, 0) },
		"softmax": func(g *Graph) *Tensor {
			return g.SoftmaxMasked(g.Input("x", gpu.F32, 3, 4), g.Input("m", gpu.F32, 2, 4), 1)
		},
	} {
		g := New()
		if y := build(g); y.Valid() || g.Err() == nil {
			t.Errorf("%s: built without error", name)
			continue
		}
		if msg := g.Err().Error(); !strings.Contains(msg, name+"#") {
			t.Errorf("%s: error %q does not name the op", name, msg)
		}
	}
}

// TestDropout: about p of the elements are dropped, the rest scaled by
// 1/(1-p); every run draws a new mask; a seed repeats one; DropoutOff turns
// dropout off.
func TestDropout(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	g := New()
	x := g.Input("x", gpu.F32, 100, 100)
	y := g.Dropout(x, 0.25)
	if g.Dropout(x, 0) != x {
		t.Error("dropout with p = 0 is not the identity")
	}
	ones := make([]float32, 10000)
	for i := range ones {
		ones[i] = 1
	}
	masks := func(cfg Config, seed uint64, runs int) [][]float32 {
		cfg.Outputs = []*Tensor{y}
		plan, err := g.Compile(be, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer plan.Close()
		plan.SetSeed(seed)
		if err := plan.WriteF32(x, ones); err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		for range runs {
			if err := plan.Run(); err != nil {
				t.Fatal(err)
			}
			m := make([]float32, 10000)
			if err := plan.ReadF32(y, m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	a := masks(Config{}, 1, 2)
	dropped := 0
	for _, v := range a[0] {
		switch v {
		case 0:
			dropped++
		case float32(1 / 0.75):
		default:
			t.Fatalf("element %g", v)
		}
	}
	if dropped < 2300 || dropped > 2700 {
		t.Errorf("%d of 10000 dropped at p = 0.25", dropped)
	}
	if maxRelDiff(a[0], a[1]) == 0 {
		t.Error("two runs drew the same mask")
	}
	if b := masks(Config{}, 1, 1); maxRelDiff(a[0], b[0]) != 0 {
		t.Error("the same seed drew another mask")
	}
	for _, v := range masks(Config{DropoutOff: true}, 1, 1)[0] {
		if v != 1 {
			t.Fatal("DropoutOff did not turn dropout off")
		}
	}
}

// TestIO: what can be read and written.
func TestIO(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	g := New()
	x := g.Input("x", gpu.F32, 2, 3)
	h := g.Tanh(x)
	y := g.Scale(h, 2)
	plan, err := g.Compile(be, Config{Outputs: []*Tensor{y}})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if err := plan.WriteF32(x, []float32{0, 1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	if err := plan.Run(); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 6)
	if err := plan.ReadF32(y, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if want := 2 * math.Tanh(float64(i)); math.Abs(float64(v)-want) > 1e-6 {
			t.Errorf("y[%d] = %g, want %g", i, v, want)
		}
	}
	if err := plan.ReadF32(h, out); err == nil {
		t.Error("read an intermediate whose memory is reused")
	}
	if err := plan.WriteF32(y, out); err == nil {
		t.Error("wrote an output")
	}
	if err := plan.WriteF32(x, out[:5]); err == nil {
		t.Error("wrote 5 values into 6 elements")
	}
	if err := plan.WriteI32(x, make([]int32, 6)); err == nil {
		t.Error("wrote i32 into f32")
	}
}
