package optim

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of iteration iter (0-based, within the
// epoch) of epoch epoch (0-based); set it with AdamW.SetLR before each
// Step.
type Schedule interface {
	LR(epoch, iter int) float64
}

// StepDecay is BLIP's pretraining schedule (pretrain.py with utils.py's
// warmup_lr_schedule and step_lr_schedule): during epoch 0 the rate rises
// linearly from WarmupLR at iteration 0 to InitLR at iteration
// WarmupSteps and stays there,
//
//	lr = min(InitLR, WarmupLR + (InitLR - WarmupLR) * iter / WarmupSteps)
//
// and from epoch 1 on it is constant within an epoch,
//
//	lr = max(MinLR, InitLR * Rate^epoch)
//
// Warmup is counted in epoch 0's iterations only, as BLIP does: a warmup
// longer than the first epoch is cut short. WarmupSteps 0 means no warmup.
type StepDecay struct {
	WarmupLR    float64 // warmup_lr: 1e-6
	InitLR      float64 // init_lr: 3e-4
	MinLR       float64 // min_lr: 1e-6
	WarmupSteps int     // warmup_steps: 3000
	// Rate is lr_decay_rate: 0.9 in the released configs/pretrain.yaml,
	// 0.85 in the paper.
	Rate float64
}

// PretrainSchedule is configs/pretrain.yaml's schedule with the given
// decay rate (0.9 released, 0.85 paper).
func PretrainSchedule(rate float64) StepDecay {
	return StepDecay{WarmupLR: 1e-6, InitLR: 3e-4, MinLR: 1e-6, WarmupSteps: 3000, Rate: rate}
}

// Validate reports the first setting out of range, by name.
func (s StepDecay) Validate() error {
	if err := checkLR("StepDecay.InitLR (init_lr)", s.InitLR, false); err != nil {
		return err
	}
	if err := checkLR("StepDecay.WarmupLR (warmup_lr)", s.WarmupLR, true); err != nil {
		return err
	}
	if err := checkLR("StepDecay.MinLR (min_lr)", s.MinLR, true); err != nil {
		return err
	}
	if s.WarmupSteps < 0 {
		return fmt.Errorf("optim: StepDecay.WarmupSteps (warmup_steps) = %d, must be >= 0", s.WarmupSteps)
	}
	if !(s.Rate > 0 && s.Rate <= 1) {
		return fmt.Errorf("optim: StepDecay.Rate (lr_decay_rate) = %g, must be in (0, 1]", s.Rate)
	}
	return nil
}

// LR implements Schedule.
func (s StepDecay) LR(epoch, iter int) float64 {
	if epoch == 0 && s.WarmupSteps > 0 {
		return min(s.InitLR, s.WarmupLR+(s.InitLR-s.WarmupLR)*float64(iter)/float64(s.WarmupSteps))
	}
	return max(s.MinLR, s.InitLR*math.Pow(s.Rate, float64(epoch)))
}

// Cosine is BLIP's fine-tuning schedule (utils.py cosine_lr_schedule, set
// once per epoch, no warmup):
//
//	lr = (InitLR - MinLR) * 0.5 * (1 + cos(pi * epoch / Epochs)) + MinLR
//
// Fine-tuning configs use MinLR 0 and InitLR 1e-5 (retrieval, captioning)
// or 2e-5 (VQA).
type Cosine struct {
	InitLR float64 // init_lr
	MinLR  float64 // min_lr
	Epochs int     // max_epoch
}

// Validate reports the first setting out of range, by name.
func (c Cosine) Validate() error {
	if err := checkLR("Cosine.InitLR (init_lr)", c.InitLR, false); err != nil {
		return err
	}
	if err := checkLR("Cosine.MinLR (min_lr)", c.MinLR, true); err != nil {
		return err
	}
	if c.Epochs <= 0 {
		return fmt.Errorf("optim: Cosine.Epochs (max_epoch) = %d, must be > 0", c.Epochs)
	}
	return nil
}

// LR implements Schedule; iter is ignored (the rate changes per epoch).
func (c Cosine) LR(epoch, _ int) float64 {
	return (c.InitLR-c.MinLR)*0.5*(1+math.Cos(math.Pi*float64(epoch)/float64(c.Epochs))) + c.MinLR
}
