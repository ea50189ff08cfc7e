package optim

import (
	"fmt"
	"math"
)

// Config holds the AdamW hyperparameters. Start from DefaultConfig: zero is
// a valid value for several fields (Beta1, WeightDecay), so zero never means
// "default".
type Config struct {
	// LR is the base learning rate; a group's rate is LR times its
	// LRScale. Schedules change it between steps with SetLR.
	LR float64
	// Beta1 and Beta2 are the decay rates of the first and second moment
	// estimates, in [0, 1).
	Beta1, Beta2 float64
	// Eps is added to the bias-corrected sqrt of the second moment (outside
	// the sqrt, as torch.optim.AdamW).
	Eps float64
	// WeightDecay is the decoupled decay (param *= 1 - lr*wd each step).
	WeightDecay float64
	// ExemptBiasNorm gives biases, norm parameters and every 1-D parameter
	// no weight decay (LAVIS); off, every parameter decays (salesforce/BLIP).
	// See NoDecay for the rule.
	ExemptBiasNorm bool
	// MaxGradNorm, when > 0, clips the gradients by their global L2 norm
	// before the update, as torch.nn.utils.clip_grad_norm_. It costs one
	// host read per step (the norm is needed on the host to form the
	// scale), which splits the step into two submissions; BLIP does not
	// clip, so 0 (off) is the default.
	MaxGradNorm float64
}

// DefaultConfig is BLIP's pretraining optimiser: torch.optim.AdamW with
// lr 3e-4 (init_lr of configs/pretrain.yaml), betas (0.9, 0.999), eps 1e-8
// and weight decay 0.05 on every parameter, no clipping.
func DefaultConfig() Config {
	return Config{LR: 3e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05}
}

// Validate reports the first setting out of range, by name.
func (c Config) Validate() error {
	if err := checkLR("LR", c.LR, false); err != nil {
		return err
	}
	for _, b := range []struct {
		name string
		v    float64
	}{{"Beta1", c.Beta1}, {"Beta2", c.Beta2}} {
		if !(b.v >= 0 && b.v < 1) {
			return fmt.Errorf("optim: %s = %g, must be in [0, 1)", b.name, b.v)
		}
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
		return fmt.Errorf("optim: Eps = %g, must be > 0 and finite", c.Eps)
	}
	if err := checkDecay("WeightDecay", c.WeightDecay); err != nil {
		return err
	}
	if !(c.MaxGradNorm >= 0) || math.IsInf(c.MaxGradNorm, 0) {
		return fmt.Errorf("optim: MaxGradNorm = %g, must be >= 0 (0 turns clipping off) and finite", c.MaxGradNorm)
	}
	return nil
}

// checkLR accepts a finite rate > 0, or >= 0 with zeroOK (a schedule may
// end at exactly 0).
func checkLR(name string, lr float64, zeroOK bool) error {
	ok := lr > 0 || (zeroOK && lr == 0)
	if !ok || math.IsInf(lr, 0) {
		if zeroOK {
			return fmt.Errorf("optim: %s = %g, must be >= 0 and finite", name, lr)
		}
		return fmt.Errorf("optim: %s = %g, must be > 0 and finite", name, lr)
	}
	return nil
}

func checkDecay(name string, wd float64) error {
	if !(wd >= 0) || math.IsInf(wd, 0) {
		return fmt.Errorf("optim: %s = %g, must be >= 0 and finite", name, wd)
	}
	return nil
}
