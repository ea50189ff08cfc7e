package graph

import (
	"fmt"
	"math"
	"math/rand/v2"

	"blip/gpu"
)

// Gradient checking: the analytic gradients a plan computes (fp32, on any
// backend) against central finite differences of an independent float64
// forward, for a random projection of the output to a scalar,
//
//	L(x) = sum_i R_i * f(x)_i,   R ~ N(0, 1),
//
// so that every output element's gradient path is exercised with a
// different weight. The plan is seeded with dL/df = R (Config.LossGrad).

// GradMode selects how a gradient check wires its differentiable inputs,
// which exercises the three ways a gradient can be written.
type GradMode int

const (
	// AsInputs: differentiable inputs are graph inputs (Config.GradInputs):
	// each gradient is written by its first (only) contribution.
	AsInputs GradMode = iota
	// AsParams: they are parameters whose gradient buffers already hold
	// random values: the result must be those plus the gradient (the
	// accumulating path every parameter uses).
	AsParams
	// Twice: inputs, with the op built twice on them and the results
	// added: the second contribution to each gradient adds to the first.
	Twice
)

func (m GradMode) String() string {
	return [...]string{"inputs", "params", "twice"}[m]
}

// GradCheckInput is one input of a gradient check.
type GradCheckInput struct {
	Name  string
	Shape Shape
	DType gpu.DType // F32 (default) or I32
	// Data are the values; nil draws N(0, 1) for f32 (rounded to f32, so
	// the float64 reference sees exactly what the graph sees). I32 values
	// are given as float64 too.
	Data []float64
	// Diff marks the inputs whose gradients are checked.
	Diff bool
}

// GradCheck describes one check: inputs, how to build the op on them, and
// the float64 reference forward.
type GradCheck struct {
	Name   string
	Inputs []GradCheckInput
	// Build builds the op(s) under test on in (one tensor per Input).
	Build func(g *Graph, in []*Tensor) *Tensor
	// Ref is the float64 forward: the inputs in order (i32 as float64),
	// returning the output row-major.
	Ref func(in [][]float64) []float64
	// RefFromOutput replaces Ref where the forward has hidden state the
	// reference cannot know, such as a dropout mask: it also gets the
	// unperturbed inputs in0 and the plan's own output y0 there.
	RefFromOutput func(in, in0 [][]float64, y0 []float32) []float64
	// Tol bounds |analytic - numeric| relative to the largest |numeric|
	// of each input; 0 means 1e-3 (see Check).
	Tol float64
	// Step of the central differences; 0 means 1e-6.
	Step float64
	Seed uint64
	// Config adjusts the compiled plan (DropoutOff, say).
	Config Config
}

// GradResult is what a plan computed: its output and the gradient of each
// differentiable input (in Inputs order), minus the initial parameter
// gradient in AsParams mode.
type GradResult struct {
	Out   []float32
	Grads [][]float32
	Names []string
}

// inputs returns the values of every input, drawing the random ones.
func (c *GradCheck) inputs() [][]float64 {
	rng := rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15))
	vals := make([][]float64, len(c.Inputs))
	for i, in := range c.Inputs {
		if in.Data != nil {
			vals[i] = append([]float64(nil), in.Data...)
			continue
		}
		v := make([]float64, in.Shape.Numel())
		for j := range v {
			v[j] = float64(float32(rng.NormFloat64()))
		}
		vals[i] = v
	}
	return vals
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// Analytic builds, compiles and runs the check's graph on be in mode and
// returns the output and the gradients.
func (c *GradCheck) Analytic(be gpu.Backend, mode GradMode) (*GradResult, error) {
	vals := c.inputs()
	g := New()
	ps := NewParams()
	ins := make([]*Tensor, len(c.Inputs))
	var gradIns []*Tensor
	var params []*Param
	for i, in := range c.Inputs {
		dt := in.DType
		if in.Diff && mode == AsParams {
			p, err := ps.New(in.Name, in.Shape...)
			if err != nil {
				return nil, err
			}
			params = append(params, p)
			ins[i] = g.Param(p)
			continue
		}
		ins[i] = g.Input(in.Name, dt, in.Shape...)
		if in.Diff {
			gradIns = append(gradIns, ins[i])
		}
	}
	out := c.Build(g, ins)
	if mode == Twice {
		out = g.Add(out, c.Build(g, ins))
	}
	if err := g.Err(); err != nil {
		return nil, err
	}
	r := g.Input("gradcheck.R", gpu.F32, out.shape...)
	cfg := c.Config
	cfg.Outputs, cfg.Loss, cfg.LossGrad, cfg.GradInputs = []*Tensor{out}, out, r, gradIns
	if err := ps.Alloc(be); err != nil {
		return nil, err
	}
	defer ps.Free()
	plan, err := g.Compile(be, cfg)
	if err != nil {
		return nil, err
	}
	defer plan.Close()

	rng := rand.New(rand.NewPCG(c.Seed, 1))
	proj := make([]float32, out.Numel())
	for i := range proj {
		proj[i] = float32(rng.NormFloat64())
	}
	if err := plan.WriteF32(r, proj); err != nil {
		return nil, err
	}
	var g0 [][]float32
	pi := 0
	for i, in := range c.Inputs {
		switch {
		case in.Diff && mode == AsParams:
			p := params[pi]
			pi++
			if err := p.Write(toF32(vals[i])); err != nil {
				return nil, err
			}
			init := make([]float32, p.Numel())
			for j := range init {
				init[j] = float32(rng.Float64() - 0.5)
			}
			if err := p.WriteGrad(init); err != nil {
				return nil, err
			}
			g0 = append(g0, init)
		case in.DType == gpu.I32:
			ids := make([]int32, len(vals[i]))
			for j, v := range vals[i] {
				ids[j] = int32(v)
			}
			if err := plan.WriteI32(ins[i], ids); err != nil {
				return nil, err
			}
		default:
			if err := plan.WriteF32(ins[i], toF32(vals[i])); err != nil {
				return nil, err
			}
		}
	}
	plan.SetSeed(c.Seed)
	if err := plan.Run(); err != nil {
		return nil, err
	}
	res, err := c.collect(plan, mode, out, gradIns, params, g0)
	if err != nil {
		return nil, err
	}
	if mode == AsInputs {
		// A plan must be repeatable: running it again (same dropout
		// seed) must give the same bits, which fails if a run clobbers
		// its inputs (the upstream gradient, say).
		plan.SetSeed(c.Seed)
		if err := plan.Run(); err != nil {
			return nil, err
		}
		again, err := c.collect(plan, mode, out, gradIns, params, g0)
		if err != nil {
			return nil, err
		}
		for i := range res.Grads {
			for j, v := range res.Grads[i] {
				if w := again.Grads[i][j]; math.Float32bits(v) != math.Float32bits(w) {
					return nil, fmt.Errorf("gradient of %s element %d is %g in the first run and %g in the second", res.Names[i], j, v, w)
				}
			}
		}
	}
	return res, nil
}

// collect reads the output and the gradients after a run.
func (c *GradCheck) collect(plan *Plan, mode GradMode, out *Tensor, gradIns []*Tensor, params []*Param, g0 [][]float32) (*GradResult, error) {
	res := &GradResult{Out: make([]float32, out.Numel())}
	if err := plan.ReadF32(out, res.Out); err != nil {
		return nil, err
	}
	pi, gi := 0, 0
	for _, in := range c.Inputs {
		if !in.Diff {
			continue
		}
		d := make([]float32, in.Shape.Numel())
		if mode == AsParams {
			if err := params[pi].ReadGrad(d); err != nil {
				return nil, err
			}
			for j := range d {
				d[j] -= g0[pi][j]
			}
			pi++
		} else {
			if err := plan.ReadF32(plan.Grad(gradIns[gi]), d); err != nil {
				return nil, err
			}
			gi++
		}
		res.Grads = append(res.Grads, d)
		res.Names = append(res.Names, in.Name)
	}
	return res, nil
}

// Numeric returns the central-difference gradients of every differentiable
// input for the projection the plan used, in mode (Twice doubles them).
// y0 is the plan's output (for RefFromOutput).
func (c *GradCheck) Numeric(mode GradMode, y0 []float32) [][]float64 {
	vals, base := c.inputs(), c.inputs()
	rng := rand.New(rand.NewPCG(c.Seed, 1))
	proj := make([]float64, len(y0))
	for i := range proj {
		proj[i] = float64(float32(rng.NormFloat64()))
	}
	f := func() float64 {
		var y []float64
		if c.RefFromOutput != nil {
			y = c.RefFromOutput(vals, base, y0)
		} else {
			y = c.Ref(vals)
		}
		var s float64
		for i, v := range y {
			s += proj[i] * v
		}
		return s
	}
	h := c.Step
	if h == 0 {
		h = 1e-6
	}
	mult := 1.0
	if mode == Twice && c.RefFromOutput == nil {
		mult = 2
	}
	var out [][]float64
	for i, in := range c.Inputs {
		if !in.Diff {
			continue
		}
		d := make([]float64, len(vals[i]))
		for j := range d {
			x := vals[i][j]
			vals[i][j] = x + h
			fp := f()
			vals[i][j] = x - h
			fm := f()
			vals[i][j] = x
			d[j] = mult * (fp - fm) / (2 * h)
		}
		out = append(out, d)
	}
	return out
}

// Check runs the check on be in mode and returns an error describing the
// worst element of any gradient outside tolerance.
//
// Tolerance: the analytic gradient is computed in fp32, the numeric one
// from a float64 forward with central differences (truncation error
// O(h^2 f”') ~ 1e-12 and cancellation ~1e-16/h ~ 1e-10 at h = 1e-6, both
// negligible). What remains is fp32 rounding in the kernels: each gradient
// element is a sum of at most a few hundred products in these small cases,
// an error of order sqrt(n) * 6e-8 ~ 1e-6 relative to the gradient's scale,
// plus the fp32 rounding of the forward values the backward reuses
// (softmax probabilities, normalised rows). An error of 1e-3 of the largest
// gradient element is thus far outside what rounding explains and far
// below what any wrong term (a missing factor, a transposed index, a
// dropped accumulation) produces.
func (c *GradCheck) Check(be gpu.Backend, mode GradMode) error {
	res, err := c.Analytic(be, mode)
	if err != nil {
		return fmt.Errorf("%s (%v): %w", c.Name, mode, err)
	}
	num := c.Numeric(mode, res.Out)
	tol := c.Tol
	if tol == 0 {
		tol = 1e-3
	}
	for i, want := range num {
		got := res.Grads[i]
		scale := 0.0
		for _, v := range want {
			scale = math.Max(scale, math.Abs(v))
		}
		if scale == 0 {
			scale = 1 // a zero gradient must come out (near) zero
		}
		worst, at := 0.0, -1
		for j, v := range want {
			e := math.Abs(float64(got[j]) - v)
			if math.IsNaN(float64(got[j])) {
				e = math.Inf(1)
			}
			if e > worst {
				worst, at = e, j
			}
		}
		if worst > tol*scale {
			return fmt.Errorf("%s (%v): gradient of %s: element %d is %g, numeric %g: error %.3g of scale %.3g (tolerance %g)",
				c.Name, mode, res.Names[i], at, got[at], want[at], worst/scale, scale, tol)
		}
	}
	return nil
}
