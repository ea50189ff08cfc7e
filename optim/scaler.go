package optim

import (
	"fmt"
	"math"
)

// ScalerConfig holds the settings of dynamic loss scaling, those of
// torch.cuda.amp.GradScaler plus a floor. Start from DefaultScalerConfig.
type ScalerConfig struct {
	// InitScale is the first scale S. Powers of two keep scaling and
	// unscaling exact: multiplying an fp32 value by 2^k only moves its
	// exponent, so S*g/S == g bit for bit unless S*g overflows.
	InitScale float64
	// GrowthFactor multiplies S after GrowthInterval consecutive steps
	// with finite gradients; BackoffFactor multiplies it on every step
	// whose gradients are not finite (that step is skipped).
	GrowthFactor, BackoffFactor float64
	GrowthInterval              int64
	// MinScale is the floor: a non-finite step that would take S below it
	// is an error instead of a skip. See DefaultScalerConfig for why 1.
	MinScale float64
}

// MaxLossScale is the largest scale: S never grows past 2^126 so that
// 1/S, the unscaling factor handed to the AdamW kernel as its GradScale,
// stays a normal float32. GPUs may flush a subnormal push constant to 0,
// which that kernel reads as 1, and the step would then apply the scaled
// gradients. (torch stops growing where S*growth_factor is not finite,
// one binade higher; gradients scaled past 2^126 overflow anyway.)
const MaxLossScale = 0x1p126

// DefaultScalerConfig is GradScaler's init_scale 2^16, growth_factor 2,
// backoff_factor 0.5 and growth_interval 2000, with a floor of 1.
//
// Why a floor of 1 where GradScaler has none: here the weight copies, and
// the activations that the products round to f16 anyway, are 16-bit, but
// gradients are fp32, so the scale guards fp32's range, not fp16's. At S = 1 a non-finite gradient norm means the
// unscaled gradients themselves overflow fp32 or hold a NaN (a diverged
// model, a 0/0 in a backward), which a smaller scale cannot cure; skipping
// on would silently stop training while the run kept going. From the
// default 2^16 the run stops at the 17th consecutive non-finite step.
func DefaultScalerConfig() ScalerConfig {
	return ScalerConfig{InitScale: 0x1p16, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000, MinScale: 1}
}

// IsLossScale accepts the initial loss scales a training config may set:
// powers of two, which scale and unscale the gradients exactly, from the
// default floor 1 to MaxLossScale.
func IsLossScale(x float64) bool {
	frac, _ := math.Frexp(x)
	return frac == 0.5 && x >= DefaultScalerConfig().MinScale && x <= MaxLossScale
}

// ScalerFrom is DefaultScalerConfig starting at init (0: its 2^16).
func ScalerFrom(init float64) ScalerConfig {
	sc := DefaultScalerConfig()
	if init != 0 {
		sc.InitScale = init
	}
	return sc
}

// Validate reports the first setting out of range, by name.
func (c ScalerConfig) Validate() error {
	switch {
	case !(c.MinScale > 0) || c.MinScale > MaxLossScale:
		return fmt.Errorf("optim: loss scaler: MinScale = %g, must be in (0, 2^126]", c.MinScale)
	case !(c.InitScale >= c.MinScale && c.InitScale <= MaxLossScale):
		return fmt.Errorf("optim: loss scaler: InitScale = %g, must be in [MinScale %g, 2^126]", c.InitScale, c.MinScale)
	case !(c.GrowthFactor > 1) || math.IsInf(c.GrowthFactor, 0):
		return fmt.Errorf("optim: loss scaler: GrowthFactor = %g, must be > 1 and finite", c.GrowthFactor)
	case !(c.BackoffFactor > 0 && c.BackoffFactor < 1):
		return fmt.Errorf("optim: loss scaler: BackoffFactor = %g, must be in (0, 1)", c.BackoffFactor)
	case c.GrowthInterval < 1:
		return fmt.Errorf("optim: loss scaler: GrowthInterval = %d, must be >= 1", c.GrowthInterval)
	}
	return nil
}

// Scaler is a dynamic loss scale, as torch.cuda.amp.GradScaler: the
// caller seeds the backward pass with Scale() instead of 1 (so every
// gradient is S times the true one), and an AdamW the Scaler is attached
// to (AdamW.SetScaler) unscales by 1/S, skips a step whose gradient norm
// is not finite and backs S off, and grows S after GrowthInterval
// consecutive good steps.
//
// Overflow is found from the gradient norm, as clipping measures it: any
// Inf or NaN gradient makes it non-finite, and so does a sum of squares
// past fp32's range (S*norm > about 2^64), which caps S there in
// practice; skipping such a step is conservative, never wrong.
type Scaler struct {
	cfg ScalerConfig
	// scale is kept in float32, as GradScaler's scale tensor, so that a
	// checkpoint (F32) holds it exactly.
	scale float32
	// good counts the finite steps since S last changed (GradScaler's
	// growth tracker); skipped counts every skipped step.
	good, skipped int64
}

// NewScaler returns a scaler at cfg.InitScale.
func NewScaler(cfg ScalerConfig) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scaler{cfg: cfg, scale: float32(cfg.InitScale)}, nil
}

// Config returns the settings the scaler was made with.
func (s *Scaler) Config() ScalerConfig { return s.cfg }

// Scale is the current loss scale S, to seed the next backward pass with.
func (s *Scaler) Scale() float64 { return float64(s.scale) }

// GoodSteps is the number of consecutive finite steps since S last
// changed.
func (s *Scaler) GoodSteps() int64 { return s.good }

// Skipped is the number of steps skipped so far (checkpoints keep it).
func (s *Scaler) Skipped() int64 { return s.skipped }

// update records the outcome of one step taken at Scale(). A non-finite
// step backs S off; it returns an error, wrapping ErrNonFinite, when that
// would take S below the floor (S is then left as it was).
func (s *Scaler) update(finite bool) error {
	if !finite {
		next := float32(float64(s.scale) * s.cfg.BackoffFactor)
		if float64(next) < s.cfg.MinScale {
			return fmt.Errorf("%w at loss scale %g, the floor of the scale (after %d skipped steps): the gradients are not finite even unscaled",
				ErrNonFinite, s.scale, s.skipped)
		}
		s.scale, s.good = next, 0
		s.skipped++
		return nil
	}
	s.good++
	if s.good >= s.cfg.GrowthInterval {
		s.good = 0
		if next := float32(float64(s.scale) * s.cfg.GrowthFactor); float64(next) <= MaxLossScale {
			s.scale = next
		}
	}
	return nil
}

// Scaler state keys in the map AdamW.State returns (when a scaler is
// attached): GradScaler's state_dict names.
const (
	KeyLossScale     = "scaler.scale"          // S, shape [1], F32
	KeyGrowthTracker = "scaler.growth_tracker" // GoodSteps, shape [1], I64
	KeySkipped       = "scaler.skipped"        // Skipped, shape [1], I64
)

func (s *Scaler) state(st map[string]StateTensor) {
	st[KeyLossScale] = StateTensor{Shape: []int64{1}, F32: []float32{s.scale}}
	st[KeyGrowthTracker] = StateTensor{Shape: []int64{1}, I64: []int64{s.good}}
	st[KeySkipped] = StateTensor{Shape: []int64{1}, I64: []int64{s.skipped}}
}

// parseState reads what state wrote. ok is false when st holds no scaler
// state (a checkpoint of a run without one): the scaler keeps its own.
func (s *Scaler) parseState(st map[string]StateTensor) (next Scaler, ok bool, err error) {
	t, ok := st[KeyLossScale]
	if !ok {
		return *s, false, nil
	}
	next = *s
	if len(t.F32) != 1 || !(float64(t.F32[0]) > 0 && float64(t.F32[0]) <= MaxLossScale) {
		return next, false, fmt.Errorf("optim: load: %q must hold one f32 in (0, 2^126], got %v", KeyLossScale, t.F32)
	}
	next.scale = t.F32[0]
	for _, k := range []struct {
		key string
		dst *int64
	}{{KeyGrowthTracker, &next.good}, {KeySkipped, &next.skipped}} {
		t, ok := st[k.key]
		if !ok {
			return next, false, fmt.Errorf("optim: load: %q without %q", KeyLossScale, k.key)
		}
		if len(t.I64) != 1 || t.I64[0] < 0 {
			return next, false, fmt.Errorf("optim: load: %q must hold one int64 >= 0, got %v", k.key, t.I64)
		}
		*k.dst = t.I64[0]
	}
	return next, true, nil
}
