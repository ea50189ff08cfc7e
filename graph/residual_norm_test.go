package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// residualBlock builds a ViT-style pre-norm step: s = a + b, y = LN(s),
// z = s + y (s read again after the norm). With apart, another node is
// built between the add and the norm, so that nothing fuses.
func residualBlock(g *Graph, rows, cols int, apart bool) (a, b, s, y, z *Tensor) {
	a = g.Input("a", gpu.F32, rows, cols)
	b = g.Input("b", gpu.F32, rows, cols)
	s = g.Add(a, b)
	if apart {
		g.Add(a, a)
	}
	gamma := g.Const("gamma", randData(rand.New(rand.NewPCG(3, 4)), cols, 1), cols)
	beta := g.Const("beta", randData(rand.New(rand.NewPCG(5, 6)), cols, 1), cols)
	y = g.LayerNorm(s, gamma, beta, 1e-6)
	z = g.Add(s, y)
	return
}

// TestResidualLayerNorm checks the add fused into the LayerNorm after it:
// an inference plan runs one Binary fewer, and its outputs (the norm, the
// sum and what reads the sum later) equal bit for bit those of the same
// graph with the two apart; a plan without the norm keeps the add, and a
// training plan keeps both calls.
func TestResidualLayerNorm(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	const rows, cols = 7, 33
	rng := rand.New(rand.NewPCG(1, 2))
	da, db := randData(rng, rows*cols, 2), randData(rng, rows*cols, 1)
	run := func(apart bool, outs func(s, y, z *Tensor) []*Tensor) ([][]float32, map[string]int) {
		g := New()
		a, b, s, y, z := residualBlock(g, rows, cols, apart)
		o := outs(s, y, z)
		p, err := g.Compile(be, Config{Outputs: o})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		kinds := map[string]int{}
		for _, c := range p.calls {
			kinds[c.Kernel()]++
			if l, ok := c.(gpu.LayerNorm); ok && l.R.Buf != nil {
				kinds["layernorm+residual"]++
				if l.S.Buf != nil {
					kinds["layernorm+sum"]++
				}
			}
		}
		if err := p.WriteF32(a, da); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteF32(b, db); err != nil {
			t.Fatal(err)
		}
		if err := p.Run(); err != nil {
			t.Fatal(err)
		}
		var got [][]float32
		for _, x := range o {
			v := make([]float32, x.Numel())
			if err := p.ReadF32(x, v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		return got, kinds
	}
	all := func(s, y, z *Tensor) []*Tensor { return []*Tensor{y, z, s} }
	fused, kf := run(false, all)
	apart, ka := run(true, all)
	if kf["binary"] != 1 || kf["layernorm+residual"] != 1 {
		t.Errorf("fused plan: %v, want one binary and one layernorm with the residual", kf)
	}
	if ka["layernorm+residual"] != 0 || ka["binary"] != 2 { // the unused a + a is pruned
		t.Errorf("plan with a node between the add and the norm: %v, want two binaries and a plain layernorm", ka)
	}
	for i, name := range []string{"y", "z", "s"} {
		for j := range fused[i] {
			if fused[i][j] != apart[i][j] {
				t.Fatalf("%s[%d]: fused %v, apart %v", name, j, fused[i][j], apart[i][j])
			}
		}
	}
	// The sum is written where a later node reads it (z), and only there.
	yz, kyz := run(false, func(_, y, z *Tensor) []*Tensor { return []*Tensor{y, z} })
	for i := range yz {
		for j := range yz[i] {
			if yz[i][j] != apart[i][j] {
				t.Fatalf("%s[%d] of the plan of y and z: %v, want %v", []string{"y", "z"}[i], j, yz[i][j], apart[i][j])
			}
		}
	}
	if kyz["layernorm+sum"] != 1 {
		t.Errorf("plan of y and z: %v, want the layernorm writing the sum", kyz)
	}
	y, ky := run(false, func(_, y, _ *Tensor) []*Tensor { return []*Tensor{y} })
	for j := range y[0] {
		if y[0][j] != apart[0][j] {
			t.Fatalf("y[%d] of the plan of y: %v, want %v", j, y[0][j], apart[0][j])
		}
	}
	if ky["layernorm+residual"] != 1 || ky["layernorm+sum"] != 0 {
		t.Errorf("plan of y: %v, want the layernorm with the residual, not writing the sum", ky)
	}

	// Without the norm in the plan, the add runs.
	sOnly, ks := run(false, func(s, _, _ *Tensor) []*Tensor { return []*Tensor{s} })
	if ks["binary"] != 1 || ks["layernorm"] != 0 {
		t.Errorf("plan of the sum alone: %v, want the binary only", ks)
	}
	for j := range sOnly[0] {
		if sOnly[0][j] != apart[2][j] {
			t.Fatalf("s[%d] without the norm: %v, want %v", j, sOnly[0][j], apart[2][j])
		}
	}

	// Training: both calls stay (the norm's backward reads its input).
	g := New()
	ps := NewParams()
	w, err := ps.New("w", rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	defer ps.Free()
	a, _, _, _, z := residualBlock(g, rows, cols, false)
	loss := g.Sum(g.Mul(g.Add(z, g.Param(w)), a))
	p, err := g.Compile(be, Config{Loss: loss})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n := 0
	for _, c := range p.calls {
		if l, ok := c.(gpu.LayerNorm); ok {
			n++
			if l.R.Buf != nil {
				t.Error("a training plan fused the add into the norm")
			}
		}
	}
	if n != 1 {
		t.Errorf("training plan: %d layernorm calls, want 1", n)
	}
}

// TestResidualLayerNormMemory runs post-norm blocks (x = LN(x + W x + b))
// over many row counts, so that the arena places tensors in many ways, and
// checks that no two views of a fused LayerNorm call overlap (the add's
// operands are read while Y and S are written) and that the outputs equal
// those of the unfused graph bit for bit.
func TestResidualLayerNormMemory(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	const cols, layers = 33, 3
	ps := NewParams()
	var ws, bs []*Param
	for l := range layers {
		w, err := ps.New(fmt.Sprintf("w%d", l), cols, cols)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ps.New(fmt.Sprintf("b%d", l), cols)
		if err != nil {
			t.Fatal(err)
		}
		ws, bs = append(ws, w), append(bs, b)
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	defer ps.Free()
	rng := rand.New(rand.NewPCG(7, 8))
	for l := range layers {
		if err := ws[l].Write(randData(rng, cols*cols, 0.3)); err != nil {
			t.Fatal(err)
		}
		if err := bs[l].Write(randData(rng, cols, 0.3)); err != nil {
			t.Fatal(err)
		}
	}
	gamma := randData(rng, cols, 1)
	for rows := 1; rows <= 24; rows++ {
		in := randData(rng, rows*cols, 1)
		run := func(apart bool) []float32 {
			g := New()
			x0 := g.Input("x", gpu.F32, rows, cols)
			gm := g.Const("gamma", gamma, cols)
			x := x0
			for l := range layers {
				s := g.Add(g.Linear(x, g.Param(ws[l]), g.Param(bs[l])), x)
				if apart {
					g.Add(s, s) // pruned, but not the last node
				}
				x = g.LayerNorm(s, gm, gm, 1e-5)
			}
			p, err := g.Compile(be, Config{Outputs: []*Tensor{x}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			fused, withGemm := 0, 0
			for _, c := range p.calls {
				l, ok := c.(gpu.LayerNorm)
				if gn, isGN := c.(gpu.GemmNorm); isGN {
					l, ok = gn.L, true
					withGemm++
				}
				if !ok || l.R.Buf == nil {
					continue
				}
				fused++
				if l.S.Buf != nil {
					t.Errorf("rows %d: a fused layernorm writes the sum, which nothing else reads", rows)
				}
				vs := []gpu.View{l.X, l.R, l.S, l.Y}
				for i := range vs {
					for j := i + 1; j < len(vs); j++ {
						if vs[i].Buf != nil && vs[i].Buf == vs[j].Buf && vs[i].Off < vs[j].Off+vs[j].Len && vs[j].Off < vs[i].Off+vs[i].Len {
							t.Errorf("rows %d: views %d and %d of a fused layernorm overlap: %+v, %+v", rows, i, j, vs[i], vs[j])
						}
					}
				}
			}
			if want := map[bool]int{false: layers, true: 0}[apart]; fused != want || withGemm != want {
				t.Fatalf("rows %d, apart %v: %d fused layernorms, %d with their linear layer, want %d", rows, apart, fused, withGemm, want)
			}
			if err := p.WriteF32(x0, in); err != nil {
				t.Fatal(err)
			}
			if err := p.Run(); err != nil {
				t.Fatal(err)
			}
			out := make([]float32, rows*cols)
			if err := p.ReadF32(x, out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		a, b := run(false), run(true)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("rows %d: [%d] fused %v, apart %v", rows, i, a[i], b[i])
			}
		}
	}
}
