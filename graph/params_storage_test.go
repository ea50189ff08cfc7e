package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"blip/gpu"
	"blip/gpu/cpu"
)

// TestWeightStorage checks reduced-precision weights on both backends: an
// inference plan of Linear (with bias and GELU) under SetStorage(F16/BF16)
// gives what float64 arithmetic gives on the weights rounded to that type,
// and under F16 on the input rounded to f16 too (half-precision products,
// gpu.Gemm.F16), to fp32 accumulation accuracy, and not the fp32 result; a
// Param.Write reaches the 16-bit copy before the next Run; a training plan
// reads the copy in its forward and dX products, computes dW from fp32
// operands (BF16) or from their f16 roundings (F16: all three products in
// half precision, as autocast) into fp32, and refreshes the copy from the
// master weights every step.
func TestWeightStorage(t *testing.T) {
	backends := map[string]gpu.Backend{"cpu": cpu.New()}
	defer backends["cpu"].Close()
	backends["vulkan"] = openVulkan(t)
	for name, be := range backends {
		for _, dt := range []gpu.DType{gpu.F16, gpu.BF16} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) { testWeightStorage(t, be, dt) })
		}
	}
}

func testWeightStorage(t *testing.T, be gpu.Backend, dt gpu.DType) {
	const rows, in, out = 5, 67, 33
	r := rand.New(rand.NewPCG(1, uint64(dt)))
	randn := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * s)
		}
		return v
	}
	ps := NewParams()
	w, err := ps.New("w", out, in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ps.New("b", out)
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	defer ps.Free()
	wv, bv, xv := randn(out*in, 0.3), randn(out, 0.1), randn(rows*in, 1)
	if err := w.Write(wv); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(bv); err != nil {
		t.Fatal(err)
	}
	if err := ps.SetStorage(dt); err != nil {
		t.Fatal(err)
	}

	g := New()
	x := g.Input("x", gpu.F32, rows, in)
	y := g.LinearAct(x, g.Param(w), g.Param(b), gpu.ActGELU)
	plan, err := g.Compile(be, Config{Outputs: []*Tensor{y}})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	run := func() []float32 {
		t.Helper()
		if err := plan.WriteF32(x, xv); err != nil {
			t.Fatal(err)
		}
		if err := plan.Run(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, rows*out)
		if err := plan.ReadF32(y, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// half: the products' other operand is rounded to f16 as well.
	half := dt == gpu.F16
	act := func(v float32) float32 {
		if half {
			return gpu.Round(gpu.F16, v)
		}
		return v
	}
	ref := func(round bool) []float64 {
		o := make([]float64, rows*out)
		for i := range rows {
			for j := range out {
				s := float64(bv[j])
				for k := range in {
					wk, xk := wv[j*in+k], xv[i*in+k]
					if round {
						wk, xk = gpu.Round(dt, wk), act(xk)
					}
					s += float64(xk) * float64(wk)
				}
				o[i*out+j] = s / 2 * (1 + math.Erf(s/math.Sqrt2))
			}
		}
		return o
	}
	check := func(what string) {
		t.Helper()
		got := run()
		low, full := ref(true), ref(false)
		var errLow, gap float64
		for i := range got {
			errLow = math.Max(errLow, math.Abs(float64(got[i])-low[i]))
			gap = math.Max(gap, math.Abs(low[i]-full[i]))
		}
		t.Logf("%s: max |y - y(rounded operands)| %.3g; rounding moves y by %.3g", what, errLow, gap)
		if errLow > 1e-5 {
			t.Errorf("%s: output is %.3g from the product with %s weights (f16 input: %v)", what, errLow, dt, half)
		}
		if gap < 100*errLow || gap < 1e-4 {
			t.Errorf("%s: the case cannot tell %s from f32 weights (gap %.3g, error %.3g)", what, dt, gap, errLow)
		}
	}
	check("first run")
	wv = randn(out*in, 0.3)
	if err := w.Write(wv); err != nil {
		t.Fatal(err)
	}
	check("after Param.Write")

	// Training: the forward product and dX read the 16-bit copy, dW
	// reads fp32 operands (rounded to f16 under F16); the copy follows
	// the master weights even when they change behind Param.Write's back
	// (as an optimiser step changes them). dL/dy = 1 is an f16 value.
	tg := New()
	tx := tg.Input("x", gpu.F32, rows, in)
	ty := tg.Linear(tx, tg.Param(w), nil)
	loss := tg.Sum(ty)
	tp, err := tg.Compile(be, Config{Outputs: []*Tensor{ty}, Loss: loss, GradInputs: []*Tensor{tx}})
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if err := tp.WriteF32(tx, xv); err != nil {
		t.Fatal(err)
	}
	for step := range 2 {
		if step == 1 {
			wv = randn(out*in, 0.3)
			if err := be.Write(w.Value().Buf, w.Value().ByteOff(), f32Bytes(wv)); err != nil {
				t.Fatal(err)
			}
		}
		if err := ps.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := tp.Run(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, rows*out)
		dx := make([]float32, rows*in)
		dw := make([]float32, out*in)
		if err := tp.ReadF32(ty, got); err != nil {
			t.Fatal(err)
		}
		if err := tp.ReadF32(tp.Grad(tx), dx); err != nil {
			t.Fatal(err)
		}
		if err := w.ReadGrad(dw); err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			for j := range out {
				var s float64
				for k := range in {
					s += float64(act(xv[i*in+k])) * float64(gpu.Round(dt, wv[j*in+k]))
				}
				if d := math.Abs(float64(got[i*out+j]) - s); d > 1e-5 {
					t.Fatalf("training step %d: y[%d,%d] = %g, %s weights give %g", step, i, j, got[i*out+j], dt, s)
				}
			}
			for k := range in {
				var s float64 // dL/dx[i,k] = sum_j w[j,k] (dL/dy = 1)
				for j := range out {
					s += float64(gpu.Round(dt, wv[j*in+k]))
				}
				if d := math.Abs(float64(dx[i*in+k]) - s); d > 1e-5 {
					t.Fatalf("training step %d: dx[%d,%d] = %g, %s weights give %g", step, i, k, dx[i*in+k], dt, s)
				}
			}
		}
		for j := range out {
			for k := range in {
				var s float64 // dL/dw[j,k] = sum_i x[i,k] (f16(x) under F16)
				for i := range rows {
					s += float64(act(xv[i*in+k]))
				}
				if d := math.Abs(float64(dw[j*in+k]) - s); d > 1e-5 {
					t.Fatalf("training step %d: dw[%d,%d] = %g, want %g", step, j, k, dw[j*in+k], s)
				}
			}
		}
	}
	// The inference plan sees the master weights the training step read.
	check("after training steps")
	if err := ps.SetStorage(gpu.I32); err == nil {
		t.Error("SetStorage(i32) accepted")
	}
}

// TestParamOperand checks what calls outside plans read for a weight: the
// values under f32 storage, the 16-bit copy (same place, same length)
// otherwise, with half-precision products under F16 only.
func TestParamOperand(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	ps := NewParams()
	p, err := ps.New("w", 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps.New("after", 7); err != nil {
		t.Fatal(err)
	}
	if err := ps.Alloc(be); err != nil {
		t.Fatal(err)
	}
	defer ps.Free()
	if v, half := p.Operand(); v != p.Value() || half {
		t.Errorf("f32 storage: %+v half %v, want the values %+v", v, half, p.Value())
	}
	for _, c := range []struct {
		dt   gpu.DType
		half bool
	}{{gpu.F16, true}, {gpu.BF16, false}} {
		if err := ps.SetStorage(c.dt); err != nil {
			t.Fatal(err)
		}
		v, half := p.Operand()
		if v.DType != c.dt || v.Buf == p.Value().Buf || v.Off != p.Value().Off || v.Len != p.Value().Len || half != c.half {
			t.Errorf("%s storage: %+v half %v", c.dt, v, half)
		}
	}
}
