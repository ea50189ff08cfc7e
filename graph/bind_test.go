package graph

import (
	"math/rand/v2"
	"strings"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// TestBind chains two plans through a bound input (the second reads the
// first's output where it lies, as the KV-cached decoder's plans do), runs
// them twice with new data, and checks the refusals: a bound tensor that
// is not an input, a view of the wrong size or type.
func TestBind(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	const n = 37
	rng := rand.New(rand.NewPCG(9, 10))

	ga := New()
	x := ga.Input("x", gpu.F32, n)
	y := ga.Add(x, x) // 2x
	pa, err := ga.Compile(be, Config{Outputs: []*Tensor{y}})
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	yv, err := pa.View(y)
	if err != nil {
		t.Fatal(err)
	}

	gb := New()
	h := gb.Input("hidden", gpu.F32, n)
	c := gb.Input("c", gpu.F32, n)
	z := gb.Mul(h, c)
	pb, err := gb.Compile(be, Config{Outputs: []*Tensor{z}, Bind: map[*Tensor]gpu.View{h: yv}})
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	if v, err := pb.View(h); err != nil || v != yv {
		t.Fatalf("bound input's view %+v (%v), want %+v", v, err, yv)
	}
	for range 2 {
		dx, dc := randData(rng, n, 1), randData(rng, n, 1)
		if err := pa.WriteF32(x, dx); err != nil {
			t.Fatal(err)
		}
		if err := pb.WriteF32(c, dc); err != nil {
			t.Fatal(err)
		}
		if err := pa.Run(); err != nil {
			t.Fatal(err)
		}
		if err := pb.Run(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, n)
		if err := pb.ReadF32(z, got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if want := (dx[i] + dx[i]) * dc[i]; got[i] != want {
				t.Fatalf("z[%d] = %v, want %v", i, got[i], want)
			}
		}
	}

	for _, bad := range []struct {
		name string
		bind func(g *Graph) map[*Tensor]gpu.View
		want string
	}{
		{"not an input", func(g *Graph) map[*Tensor]gpu.View {
			in := g.Input("a", gpu.F32, n)
			return map[*Tensor]gpu.View{g.Add(in, in): yv}
		}, "not an input"},
		{"short view", func(g *Graph) map[*Tensor]gpu.View {
			return map[*Tensor]gpu.View{g.Input("a", gpu.F32, n+1): yv}
		}, "want 38 f32"},
		{"wrong type", func(g *Graph) map[*Tensor]gpu.View {
			return map[*Tensor]gpu.View{g.Input("a", gpu.I32, n): yv}
		}, "want 37 i32"},
	} {
		g := New()
		bind := bad.bind(g)
		var out *Tensor
		for t := range bind {
			if t.dtype == gpu.F32 {
				out = g.Add(t, t)
			} else {
				o := g.Input("o", gpu.F32, 1)
				out = g.Add(o, o)
			}
		}
		_, err := g.Compile(be, Config{Outputs: []*Tensor{out}, Bind: bind})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error containing %q", bad.name, err, bad.want)
		}
	}
}
