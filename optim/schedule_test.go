package optim

import (
	"math"
	"strings"
	"testing"
)

// TestStepDecay checks BLIP's pretraining schedule at hand-computed points.
func TestStepDecay(t *testing.T) {
	s := PretrainSchedule(0.9)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		epoch, iter int
		want        float64
	}{
		{0, 0, 1e-6},                      // warmup_lr
		{0, 1500, 1e-6 + (3e-4-1e-6)*0.5}, // half way: 1.505e-4
		{0, 3000, 3e-4},                   // end of warmup
		{0, 10000, 3e-4},                  // rest of epoch 0
		{1, 0, 2.7e-4},                    // 3e-4 * 0.9
		{1, 5000, 2.7e-4},                 // constant within the epoch
		{2, 7, 2.43e-4},                   // 3e-4 * 0.81
		{19, 0, 3e-4 * math.Pow(0.9, 19)}, // 4.0528e-5
		{100, 0, 1e-6},                    // floored at min_lr
	} {
		if got := s.LR(c.epoch, c.iter); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("rate 0.9, epoch %d iter %d: lr %.10g, want %.10g", c.epoch, c.iter, got, c.want)
		}
	}
	p := PretrainSchedule(0.85)
	if got, want := p.LR(3, 0), 3e-4*0.614125; math.Abs(got-want) > 1e-12 {
		t.Errorf("rate 0.85, epoch 3: lr %g, want %g", got, want)
	}
	noWarm := StepDecay{InitLR: 1e-4, MinLR: 0, Rate: 0.5}
	if got := noWarm.LR(0, 0); got != 1e-4 {
		t.Errorf("no warmup, epoch 0: lr %g, want 1e-4", got)
	}
}

// TestCosine checks BLIP's fine-tuning schedule at hand-computed points.
func TestCosine(t *testing.T) {
	c := Cosine{InitLR: 1e-5, MinLR: 0, Epochs: 6}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		epoch int
		want  float64
	}{
		{0, 1e-5},
		{2, 0.75e-5}, // cos(pi/3) = 0.5
		{3, 0.5e-5},  // cos(pi/2) = 0
		{4, 0.25e-5}, // cos(2pi/3) = -0.5
		{6, 0},
	} {
		if got := c.LR(x.epoch, 123); math.Abs(got-x.want) > 1e-15 {
			t.Errorf("epoch %d: lr %.10g, want %.10g", x.epoch, got, x.want)
		}
	}
	m := Cosine{InitLR: 2e-5, MinLR: 1e-6, Epochs: 10}
	if got, want := m.LR(5, 0), 1.9e-5*0.5+1e-6; math.Abs(got-want) > 1e-15 {
		t.Errorf("min_lr 1e-6, epoch 5: lr %g, want %g", got, want)
	}
}

// TestScheduleErrors checks that bad settings are errors naming them.
func TestScheduleErrors(t *testing.T) {
	good := PretrainSchedule(0.9)
	for _, c := range []struct {
		set  func(*StepDecay)
		want string
	}{
		{func(s *StepDecay) { s.InitLR = 0 }, "init_lr"},
		{func(s *StepDecay) { s.WarmupLR = -1 }, "warmup_lr"},
		{func(s *StepDecay) { s.MinLR = -1e-6 }, "min_lr"},
		{func(s *StepDecay) { s.WarmupSteps = -1 }, "warmup_steps"},
		{func(s *StepDecay) { s.Rate = 0 }, "lr_decay_rate"},
		{func(s *StepDecay) { s.Rate = 1.1 }, "lr_decay_rate"},
	} {
		s := good
		c.set(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", s, err, c.want)
		}
	}
	for _, c := range []struct {
		s    Cosine
		want string
	}{
		{Cosine{InitLR: -1, Epochs: 5}, "init_lr"},
		{Cosine{InitLR: 1e-5, MinLR: -1, Epochs: 5}, "min_lr"},
		{Cosine{InitLR: 1e-5, Epochs: 0}, "max_epoch"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.s, err, c.want)
		}
	}
}
