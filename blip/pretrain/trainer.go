package pretrain

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"blip/blip"
	"blip/gpu"
	"blip/graph"
	"blip/optim"
)

// Batch is one step's host data, in the layouts of blip.StepInputs.
type Batch struct {
	Patches []float32 // (B, N, 3*P*P)
	IDs     []int32   // (B, T) [CLS] first
	Mask    []float32 // (B, T)
	// Keys name the samples (for messages).
	Keys []string
}

// Metrics are one step's figures.
type Metrics struct {
	Step  int64   `json:"step"` // steps done, this one included
	Epoch int     `json:"epoch"`
	Iter  int     `json:"iter"` // step within the epoch, 0-based
	ITA   float64 `json:"loss_ita"`
	ITM   float64 `json:"loss_itm"`
	LM    float64 `json:"loss_lm"`
	Loss  float64 `json:"loss"`
	LR    float64 `json:"lr"`
	Alpha float64 `json:"alpha"`
	Temp  float64 `json:"temp"`
	// LossScale is the loss scale the step's backward was seeded with (fp16
	// runs; 0: none). Skipped says its scaled gradients overflowed, so
	// AdamW skipped the update (and the scale backed off); the queues and
	// momentum copies moved as on any step. SkippedSteps counts the
	// skipped steps of the run so far.
	LossScale    float64 `json:"loss_scale,omitempty"`
	Skipped      bool    `json:"skipped,omitempty"`
	SkippedSteps int64   `json:"skipped_steps,omitempty"`
}

// ErrNonFinite is returned (wrapped, with the step and the loss
// components) when a step's loss is NaN or infinite; nothing of that step
// is applied.
var ErrNonFinite = errors.New("pretrain: non-finite loss")

// State is what a checkpoint restores besides tensors.
type State struct {
	Step     int64 `json:"step"`      // steps done
	Epoch    int   `json:"epoch"`     // epoch of the next step
	Iter     int   `json:"iter"`      // iteration of the next step within its epoch
	QueuePtr int   `json:"queue_ptr"` // next queue row to write
	// EpochSteps is the number of steps of an epoch (the alpha ramp and
	// schedule need it before the first epoch ends).
	EpochSteps int `json:"epoch_steps"`
	// DataEpoch and DataIndex are the loader position of the next batch.
	DataEpoch int `json:"data_epoch"`
	DataIndex int `json:"data_index"`
}

// Trainer owns the model, the compiled step and the optimiser on one
// backend.
type Trainer struct {
	Config *Config
	Model  *blip.Pretrain
	State  State

	be    gpu.Backend
	plan  *graph.Plan
	in    *blip.StepInputs
	out   *blip.StepOutputs
	opt   *optim.AdamW
	sched optim.StepDecay
	shape blip.StepShape
	ema   []gpu.Call
	// lossSeed is the backward's seed, the loss scale, written every step
	// (fp16 runs; nil otherwise).
	lossSeed *graph.Tensor
	dec      int32 // [DEC]
	enc      int32 // [ENC]
	pad      int32
}

// NewTrainer builds the model from src (fresh weights, an HF folder or a
// checkpoint), compiles the step for cfg's batch and text length and
// creates the optimiser. epochSteps is the number of steps an epoch has.
// Tokens: dec and enc are [DEC] and [ENC], pad the padding id.
func NewTrainer(cfg *Config, be gpu.Backend, src blip.WeightSource, epochSteps int, dec, enc, pad int) (*Trainer, error) {
	if epochSteps < 1 {
		return nil, fmt.Errorf("pretrain: an epoch of %d steps: the data holds fewer samples than one batch of %d", epochSteps, cfg.BatchSize)
	}
	m, err := blip.NewPretrain(cfg.model, src, be)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Config: cfg, Model: m, be: be, dec: int32(dec), enc: int32(enc), pad: int32(pad)}
	t.State.EpochSteps = epochSteps
	if err := t.build(); err != nil {
		m.Close()
		return nil, err
	}
	return t, nil
}

func (t *Trainer) build() error {
	cfg := t.Config
	t.Model.SetDropout(float32(cfg.Dropout))
	if cfg.FixedTemp > 0 {
		if err := t.Model.Temp.Write([]float32{float32(cfg.FixedTemp)}); err != nil {
			return err
		}
		t.Model.Temp.Frozen = true
	}
	dt, _ := blip.ParsePrecision(cfg.Precision) // validated
	if err := t.Model.Params.SetStorage(dt); err != nil {
		return err
	}
	t.shape = blip.StepShape{Batch: cfg.BatchSize, TextLen: cfg.MaxLength, Queue: cfg.QueueSize, LabelSmoothing: float32(cfg.LabelSmoothing)}
	g := graph.New()
	t.in, t.out = t.Model.BuildStep(g, t.shape)
	o := t.out
	pc := graph.Config{Loss: o.Loss, Outputs: []*graph.Tensor{o.Losses, o.ImageFeatM, o.TextFeatM}, LowActivations: blip.LowActivations()}
	if dt == gpu.F16 {
		// The scale changes between steps: an input seeds the backward,
		// so the plan need not be compiled again.
		t.lossSeed = g.Input("loss_scale", gpu.F32, o.Loss.Shape()...)
		pc.LossGrad = t.lossSeed
	}
	plan, err := g.Compile(t.be, pc)
	if err != nil {
		return err
	}
	t.plan = plan
	oc := optim.DefaultConfig()
	oc.LR, oc.WeightDecay, oc.ExemptBiasNorm, oc.MaxGradNorm = cfg.InitLR, cfg.WeightDecay, cfg.ExemptBiasNorm, cfg.MaxGradNorm
	t.opt, err = optim.NewGroups(t.Model.Params, oc, optim.DecayGroups(t.Model.Params, oc))
	if err != nil {
		return err
	}
	if dt == gpu.F16 {
		sc, err := optim.NewScaler(cfg.scalerConfig())
		if err != nil {
			return err
		}
		t.opt.SetScaler(sc)
	}
	t.sched = optim.StepDecay{WarmupLR: cfg.WarmupLR, InitLR: cfg.InitLR, MinLR: cfg.MinLR, WarmupSteps: cfg.WarmupSteps, Rate: cfg.LRDecayRate}
	if err := t.sched.Validate(); err != nil {
		return err
	}
	t.ema = t.Model.MomentumCalls(float32(cfg.Momentum))
	return t.initQueues()
}

// initQueues fills both queues with normalised Gaussian rows (BLIP's
// randn then normalize), seeded.
func (t *Trainer) initQueues() error {
	img, txt := blip.RandomQueues(t.Config.Seed, t.Config.QueueSize, t.Model.Config.ImageTextHiddenSize)
	if err := t.plan.WriteF32(t.in.ImageQueue, img); err != nil {
		return err
	}
	return t.plan.WriteF32(t.in.TextQueue, txt)
}

// Close frees the device memory.
func (t *Trainer) Close() {
	if t.plan != nil {
		t.plan.Close()
	}
	if t.opt != nil {
		t.opt.Free()
	}
	t.Model.Close()
}

// Alpha is the distillation weight of a step: BLIP ramps it linearly from
// 0 over the first AlphaRampEpochs epochs.
func (t *Trainer) Alpha(epoch, iter int) float64 {
	ramp := t.Config.AlphaRampEpochs * float64(t.State.EpochSteps)
	if ramp <= 0 {
		return t.Config.Alpha
	}
	return t.Config.Alpha * math.Min(1, float64(epoch*t.State.EpochSteps+iter)/ramp)
}

// mix64 is splitmix64's finaliser, to derive per-step seeds.
func mix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// Step runs one training step on b at the trainer's State (epoch, iter),
// then advances it. Every random draw of the step (dropout masks, the
// hard-negative sampler) derives from (seed, step number) only, which is
// what makes a resumed run equal an uninterrupted one.
func (t *Trainer) Step(b *Batch) (Metrics, error) {
	cfg, st := t.Config, &t.State
	bs, tl := cfg.BatchSize, cfg.MaxLength
	if len(b.IDs) != bs*tl || len(b.Mask) != bs*tl {
		return Metrics{}, fmt.Errorf("pretrain: batch of %d ids and %d mask values, want %d x %d", len(b.IDs), len(b.Mask), bs, tl)
	}
	lr := t.sched.LR(st.Epoch, st.Iter)
	if err := t.opt.SetLR(lr); err != nil {
		return Metrics{}, err
	}
	alpha := t.Alpha(st.Epoch, st.Iter)
	enc := append([]int32(nil), b.IDs...)
	dec := append([]int32(nil), b.IDs...)
	for i := range bs {
		enc[i*tl], dec[i*tl] = t.enc, t.dec
	}
	labels, err := blip.ShiftLabels(dec, bs, tl, int(t.pad))
	if err != nil {
		return Metrics{}, err
	}
	r := rand.New(rand.NewPCG(mix64(cfg.Seed^0x6e6567), uint64(st.Step)))
	noise := make([]float32, 2*bs*bs)
	for i := range noise {
		noise[i] = float32(1 / r.ExpFloat64())
	}
	p, in := t.plan, t.in
	for _, err := range []error{
		p.WriteF32(in.Patches, b.Patches), p.WriteI32(in.IDs, b.IDs), p.WriteI32(in.EncIDs, enc),
		p.WriteI32(in.DecIDs, dec), p.WriteI32(in.Labels, labels), p.WriteF32(in.Mask, b.Mask),
		p.WriteF32(in.Alpha, []float32{float32(alpha)}), p.WriteF32(in.NegNoise, noise),
	} {
		if err != nil {
			return Metrics{}, fmt.Errorf("pretrain: step %d: %w", st.Step+1, err)
		}
	}
	p.SetSeed(mix64(cfg.Seed ^ mix64(uint64(st.Step))))
	scale, err := t.seedLossScale()
	if err != nil {
		return Metrics{}, fmt.Errorf("pretrain: step %d: %w", st.Step+1, err)
	}

	if err := t.Model.Params.ZeroGrad(); err != nil {
		return Metrics{}, err
	}
	if err := p.Run(); err != nil {
		return Metrics{}, fmt.Errorf("pretrain: step %d: %w", st.Step+1, err)
	}
	m := Metrics{Step: st.Step + 1, Epoch: st.Epoch, Iter: st.Iter, LR: lr, Alpha: alpha, LossScale: scale}
	var l [3]float32
	if err := p.ReadF32(t.out.Losses, l[:]); err != nil {
		return m, err
	}
	m.ITA, m.ITM, m.LM = float64(l[0]), float64(l[1]), float64(l[2])
	m.Loss = m.ITA + m.ITM + m.LM
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return m, fmt.Errorf("%w at step %d (epoch %d, iteration %d): ita %g, itm %g, lm %g; the step was not applied",
			ErrNonFinite, m.Step, m.Epoch, m.Iter, m.ITA, m.ITM, m.LM)
	}

	// Apply: enqueue this step's momentum features, AdamW, then the
	// momentum update (BLIP's at the start of the next forward).
	var calls []gpu.Call
	d := t.Model.Config.ImageTextHiddenSize
	ptr := st.QueuePtr
	for _, pair := range [][2]*graph.Tensor{{t.out.ImageFeatM, in.ImageQueue}, {t.out.TextFeatM, in.TextQueue}} {
		fv, err := p.View(pair[0])
		if err != nil {
			return m, err
		}
		qv, err := p.View(pair[1])
		if err != nil {
			return m, err
		}
		var c []gpu.Call
		c, ptr = blip.EnqueueCalls(fv, qv, bs, cfg.QueueSize, d, st.QueuePtr)
		calls = append(calls, c...)
	}
	if err := t.be.Do(calls...); err != nil {
		return m, err
	}
	if err := t.opt.Step(); err != nil {
		return m, fmt.Errorf("pretrain: step %d: %w", m.Step, err)
	}
	if sc := t.opt.Scaler(); sc != nil {
		m.Skipped, m.SkippedSteps = t.opt.Skipped(), sc.Skipped()
	}
	if err := t.be.Do(t.ema...); err != nil {
		return m, err
	}
	if err := t.be.Sync(); err != nil {
		return m, err
	}
	temp, err := t.clampTemp()
	if err != nil {
		return m, err
	}
	m.Temp = temp
	st.QueuePtr = ptr
	st.Step++
	st.Iter++
	if st.Iter >= st.EpochSteps {
		st.Epoch, st.Iter = st.Epoch+1, 0
	}
	return m, nil
}

// seedLossScale writes the loss scale into the backward's seed and
// returns it (0 without loss scaling).
func (t *Trainer) seedLossScale() (float64, error) { return t.opt.SeedScale(t.plan, t.lossSeed) }

// clampTemp keeps the temperature in [0.001, 0.5], as BLIP clamps it at
// the start of every forward, and returns it.
func (t *Trainer) clampTemp() (float64, error) {
	v := make([]float32, 1)
	if err := t.Model.Temp.Read(v); err != nil {
		return 0, err
	}
	c := min(max(v[0], 0.001), 0.5)
	if c != v[0] {
		if err := t.Model.Temp.Write([]float32{c}); err != nil {
			return 0, err
		}
	}
	return float64(c), nil
}
