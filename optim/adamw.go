package optim

import (
	"errors"
	"fmt"
	"math"

	"blip/gpu"
	"blip/graph"
)

// AdamW is torch.optim.AdamW over a graph.Params set, run on the set's
// backend. The parameters' fp32 values are the master weights; the first
// and second moments live in device buffers laid out like the value
// buffers, allocated once by New.
//
// Step only records kernel calls, so that a training step is
//
//	plan.Record()   // forward and backward
//	opt.Step()      // the AdamW update, in the same submission
//	params.ZeroGrad()
//	backend.Sync()
//
// with one Sync (and, with clipping on, one host read inside Step).
type AdamW struct {
	cfg    Config
	ps     *graph.Params
	be     gpu.Backend
	groups []Group
	lr     float64
	states []*pstate // in declaration order
	mBufs  []gpu.Buffer
	vBufs  []gpu.Buffer
	runs   []run
	frozen []bool // the Frozen flags runs were built for
	stale  bool   // runs must be rebuilt (frozen flags or steps changed)
	clip   clipper
	norm   float64
	freed  bool
	// scaler, when set, is the loss scale the gradients carry; skipped
	// says whether the last Step skipped the update.
	scaler  *Scaler
	skipped bool
}

// pstate is the optimiser state of one parameter.
type pstate struct {
	p     *graph.Param
	group int
	m, v  gpu.View
	step  int64 // updates applied so far (torch's per-parameter "step")
}

// ErrNonFinite is returned by Step when clipping finds a NaN or infinite
// gradient norm (with a Scaler: only when backing off would take the scale
// below its floor); no parameter is updated then.
var ErrNonFinite = errors.New("optim: gradient norm is not finite")

// New returns an AdamW over every parameter of ps (allocated) in the
// groups DecayGroups(ps, cfg) makes.
func New(ps *graph.Params, cfg Config) (*AdamW, error) {
	return NewGroups(ps, cfg, DecayGroups(ps, cfg))
}

// NewGroups returns an AdamW with explicit groups; their WeightDecay and
// LRScale replace cfg.WeightDecay and cfg.ExemptBiasNorm. Every parameter
// of ps must be in exactly one group (set Frozen to leave one alone).
func NewGroups(ps *graph.Params, cfg Config, groups []Group) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	be := ps.Backend()
	if be == nil {
		return nil, fmt.Errorf("optim: params are not allocated")
	}
	o := &AdamW{cfg: cfg, ps: ps, be: be, lr: cfg.LR, stale: true, norm: math.NaN()}
	group := map[*graph.Param]int{}
	for gi, g := range groups {
		if !(g.LRScale > 0) || math.IsInf(g.LRScale, 0) {
			return nil, fmt.Errorf("optim: group %q: LRScale = %g, must be > 0 and finite", g.Name, g.LRScale)
		}
		if err := checkDecay(fmt.Sprintf("group %q: WeightDecay", g.Name), g.WeightDecay); err != nil {
			return nil, err
		}
		for _, p := range g.Params {
			if ps.Get(p.Name()) != p {
				return nil, fmt.Errorf("optim: group %q: param %q is not of this set", g.Name, p.Name())
			}
			if prev, dup := group[p]; dup {
				return nil, fmt.Errorf("optim: param %q is in groups %q and %q", p.Name(), groups[prev].Name, g.Name)
			}
			group[p] = gi
		}
		g.Params = append([]*graph.Param(nil), g.Params...)
		o.groups = append(o.groups, g)
	}
	// The moments mirror the value buffers, so a parameter's state is at
	// the same offset as its value and contiguous parameters stay
	// contiguous.
	bufIndex := map[gpu.Buffer]int{}
	for i, b := range ps.ValueBuffers() {
		bufIndex[b] = i
		for _, dst := range []*[]gpu.Buffer{&o.mBufs, &o.vBufs} {
			nb, err := be.Alloc(b.Bytes())
			if err != nil {
				o.Free()
				return nil, fmt.Errorf("optim: AdamW state: %w", err)
			}
			*dst = append(*dst, nb)
		}
	}
	for _, p := range ps.List() {
		gi, ok := group[p]
		if !ok {
			o.Free()
			return nil, fmt.Errorf("optim: param %q is in no group (set Frozen to leave it alone)", p.Name())
		}
		val := p.Value()
		bi := bufIndex[val.Buf]
		s := &pstate{p: p, group: gi,
			m: gpu.View{Buf: o.mBufs[bi], Off: val.Off, Len: val.Len, DType: gpu.F32},
			v: gpu.View{Buf: o.vBufs[bi], Off: val.Off, Len: val.Len, DType: gpu.F32}}
		o.states = append(o.states, s)
	}
	return o, nil
}

// Config returns the configuration the optimiser was made with (LR is the
// initial rate; see LR for the current one).
func (o *AdamW) Config() Config { return o.cfg }

// Groups returns the parameter groups (do not modify).
func (o *AdamW) Groups() []Group { return o.groups }

// LR is the current base learning rate.
func (o *AdamW) LR() float64 { return o.lr }

// SetLR sets the base learning rate for the following steps. Unlike
// Config.LR it may be 0, where a schedule ends.
func (o *AdamW) SetLR(lr float64) error {
	if err := checkLR("lr", lr, true); err != nil {
		return err
	}
	o.lr = lr
	return nil
}

// StepCount returns how many updates p has received (0 for a parameter
// the optimiser does not hold).
func (o *AdamW) StepCount(p *graph.Param) int64 {
	for _, s := range o.states {
		if s.p == p {
			return s.step
		}
	}
	return 0
}

// GradNorm is the global gradient L2 norm the last Step measured,
// unscaled (NaN when neither clipping nor a Scaler is on, or before the
// first Step).
func (o *AdamW) GradNorm() float64 {
	if !o.measures() {
		return math.NaN()
	}
	return o.norm
}

// measures says whether Step reads the gradient norm back: clipping needs
// it, and so does loss scaling, to find overflowed steps.
func (o *AdamW) measures() bool { return o.cfg.MaxGradNorm > 0 || o.scaler != nil }

// SetScaler turns dynamic loss scaling on (nil turns it off): from then
// on Step takes the gradients to be s.Scale() times the true ones, as a
// backward pass seeded with s.Scale() leaves them. Step unscales them by
// 1/S (folded into the kernel's gradient scale, with clipping measured on
// the unscaled norm, as GradScaler.unscale_ then clip_grad_norm_), skips
// the update when their norm is not finite, and updates s. State and
// Load then carry s's state too.
func (o *AdamW) SetScaler(s *Scaler) {
	o.scaler = s
	o.stale = true // the norm's calls may be needed now
}

// SeedScale writes the attached scaler's scale into seed, the tensor plan's
// backward is seeded from (graph.Config.LossGrad), and returns it; without
// a scaler it writes nothing and returns 0. The loss the forward reports
// stays unscaled: only the gradients carry the scale, and Step takes it
// out.
func (o *AdamW) SeedScale(plan *graph.Plan, seed *graph.Tensor) (float64, error) {
	if o.scaler == nil {
		return 0, nil
	}
	s := o.scaler.Scale()
	return s, plan.WriteF32(seed, []float32{float32(s)})
}

// Scaler returns the attached scaler, or nil.
func (o *AdamW) Scaler() *Scaler { return o.scaler }

// Skipped reports whether the last Step skipped the update because the
// scaled gradients were not finite (only with a Scaler).
func (o *AdamW) Skipped() bool { return o.skipped }

// Step records one AdamW update of every parameter that is not Frozen,
// from the gradients accumulated in the params' gradient buffers. It does
// not sync: the caller's Backend.Sync (after Plan.Record and this) runs the
// step. Frozen parameters keep their values, moments and step counts.
//
// With clipping or a Scaler on, Step first records the gradient-norm
// reduction and reads the norm back (a wait for everything recorded so
// far), then records the update with the gradients scaled by
// min(1, MaxGradNorm/(norm+1e-6)) (clipping) and by 1/S (the Scaler's
// scale, with norm the unscaled norm). A non-finite norm updates nothing:
// without a Scaler Step returns ErrNonFinite; with one it skips the step
// (Skipped reports it), backs the scale off and returns nil, unless the
// scale is at its floor (then ErrNonFinite).
func (o *AdamW) Step() error {
	if o.freed {
		return fmt.Errorf("optim: Step after Free")
	}
	o.skipped = false
	if err := o.refresh(); err != nil {
		return err
	}
	if len(o.runs) == 0 {
		o.norm = 0 // everything frozen: no gradient counts
		return o.scaled(true)
	}
	scale := 1.0
	if o.measures() {
		norm, err := o.clip.norm(o.be)
		if err != nil {
			return err
		}
		unscale := 1.0
		if o.scaler != nil {
			// Exact for a power-of-two S: the squares were S^2 times
			// the true ones, exponent shifts only, and so is the sum.
			unscale = 1 / o.scaler.Scale()
			norm *= unscale
		}
		o.norm = norm
		if math.IsNaN(norm) || math.IsInf(norm, 0) {
			if o.scaler == nil {
				return fmt.Errorf("%w (%g): step skipped", ErrNonFinite, norm)
			}
			o.skipped = true
			return o.scaled(false)
		}
		if o.cfg.MaxGradNorm > 0 {
			scale = min(1, o.cfg.MaxGradNorm/(norm+1e-6))
		}
		scale *= unscale
		// AdamW reads GradScale 0 as 1: keep a tiny scale tiny.
		scale = max(scale, math.SmallestNonzeroFloat32)
	}
	calls := make([]gpu.Call, 0, len(o.runs))
	for _, r := range o.runs {
		g := o.groups[r.group]
		// Every param of a run has the same step count (runs are rebuilt
		// when that could change).
		t := float64(o.states[r.first].step + 1)
		calls = append(calls, gpu.AdamW{
			Param: r.val, Grad: r.grad, M: r.m, V: r.v, N: int(r.val.Len),
			LR:    float32(o.lr * g.LRScale),
			Beta1: float32(o.cfg.Beta1), Beta2: float32(o.cfg.Beta2), Eps: float32(o.cfg.Eps),
			WeightDecay: float32(g.WeightDecay),
			// Bias corrections on the host in float64, as torch computes
			// them in Python floats.
			BiasCorrection1: float32(1 - math.Pow(o.cfg.Beta1, t)),
			BiasCorrection2: float32(1 - math.Pow(o.cfg.Beta2, t)),
			GradScale:       float32(scale),
		})
	}
	if err := o.be.Do(calls...); err != nil {
		return fmt.Errorf("optim: %w", err)
	}
	for _, s := range o.states {
		if !s.p.Frozen {
			s.step++
		}
	}
	return o.scaled(true)
}

// scaled reports a step's outcome to the scaler, if any.
func (o *AdamW) scaled(finite bool) error {
	if o.scaler == nil {
		return nil
	}
	return o.scaler.update(finite)
}

// Free releases the moment buffers; the optimiser must not be used
// afterwards.
func (o *AdamW) Free() {
	for _, b := range append(append(o.mBufs, o.vBufs...), o.clip.buffers()...) {
		o.be.Free(b)
	}
	o.mBufs, o.vBufs, o.runs, o.clip = nil, nil, nil, clipper{}
	o.freed = true
}
