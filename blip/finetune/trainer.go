package finetune

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"blip/blip"
	"blip/data/dataset"
	"blip/gpu"
	"blip/graph"
	"blip/optim"
)

// Batch is one step's data, as the batcher prepares it.
type Batch struct {
	Patches []float32 // (B, N, 3*P*P)
	// caption: decoder ids, mask, labels (B, T-1). vqa: question ids and
	// mask (B, T).
	IDs    []int32
	Mask   []float32
	Labels []int32
	// vqa, per answer row (B*MaxAnswers): its question, ids, mask, weight
	// (0: an unused row) and next-token labels (Ta-1 per row).
	AnsQ      []int32
	AnsIDs    []int32
	AnsMask   []float32
	AnsWeight []float32
	AnsLabels []int32
	Keys      []string // the samples' names, for messages
}

// Metrics are one step's figures.
type Metrics struct {
	Step  int64   `json:"step"`
	Epoch int     `json:"epoch"`
	Iter  int     `json:"iter"`
	Loss  float64 `json:"loss"`
	LR    float64 `json:"lr"`
}

// State is where a run is: what a checkpoint restores besides tensors.
type State struct {
	Epoch, Iter int
	Step        int64
	EpochSteps  int
	// Pos is the data position after the last step's batch.
	Pos dataset.Position
}

// ErrNonFinite is returned by Step when the loss is NaN or infinite; the
// step is not applied.
var ErrNonFinite = errors.New("finetune: the loss is not finite")

// Trainer holds a model being fine-tuned, its compiled step and AdamW.
type Trainer struct {
	Config *Config
	Model  *blip.Model
	State  State

	be    gpu.Backend
	plan  *graph.Plan
	in    *inputs
	loss  *graph.Tensor
	opt   *optim.AdamW
	sched optim.Cosine
	// a is the answer rows of a VQA step, ta their length.
	a, ta int
	// seed drives dropout.
	seed uint64
}

// NewTrainer compiles cfg's task step for m (loaded from cfg.Init or a
// checkpoint) and creates AdamW. epochSteps is the steps per epoch.
func NewTrainer(cfg *Config, m *blip.Model, be gpu.Backend, epochSteps int) (*Trainer, error) {
	if epochSteps < 1 {
		return nil, fmt.Errorf("finetune: an epoch of %d steps: the data holds fewer samples than one batch of %d", epochSteps, cfg.BatchSize)
	}
	want := map[string]blip.ModelKind{"caption": blip.KindCaptioning, "vqa": blip.KindQA}[cfg.Task]
	if m.Kind != want {
		return nil, fmt.Errorf("finetune: task %s needs a %v folder, %s is a %v", cfg.Task, want, cfg.Init, m.Kind)
	}
	t := &Trainer{Config: cfg, Model: m, be: be, seed: cfg.Seed}
	t.State.EpochSteps = epochSteps
	p := float32(cfg.Dropout)
	if m.TextEncoder != nil {
		m.TextEncoder.SetDropout(p)
	}
	if m.TextDecoder != nil {
		m.TextDecoder.Bert.SetDropout(p)
	}
	g := graph.New()
	switch cfg.Task {
	case "caption":
		t.in, t.loss = buildCaption(g, m, cfg.BatchSize, cfg.MaxLength, float32(cfg.LabelSmoothing))
	case "vqa":
		t.a, t.ta = cfg.BatchSize*cfg.MaxAnswers, cfg.AnswerLength
		t.in, t.loss = buildVQA(g, m, cfg.BatchSize, cfg.MaxLength, cfg.MaxAnswers, cfg.AnswerLength)
	}
	plan, err := g.Compile(be, graph.Config{Loss: t.loss, Outputs: []*graph.Tensor{t.loss}})
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	t.plan = plan
	oc := optim.DefaultConfig()
	oc.LR, oc.WeightDecay, oc.MaxGradNorm = cfg.InitLR, cfg.WeightDecay, cfg.MaxGradNorm
	t.opt, err = optim.NewGroups(m.Params, oc, optim.DecayGroups(m.Params, oc))
	if err != nil {
		plan.Close()
		return nil, err
	}
	t.sched = optim.Cosine{InitLR: cfg.InitLR, MinLR: cfg.MinLR, Epochs: cfg.Epochs}
	if err := t.sched.Validate(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close frees the step and the optimiser state (not the model).
func (t *Trainer) Close() {
	if t.plan != nil {
		t.plan.Close()
	}
	if t.opt != nil {
		t.opt.Free()
	}
}

// LR is the learning rate of the step at (epoch, step): BLIP's per-epoch
// cosine from init_lr to min_lr, times a linear warmup over warmup_steps.
func (t *Trainer) LR(epoch int, step int64) float64 {
	lr := t.sched.LR(epoch, 0)
	if w := t.Config.WarmupSteps; w > 0 && step < int64(w) {
		lr *= float64(step+1) / float64(w)
	}
	return lr
}

// targets fills the VQA soft targets: row (a, j) is weight_a * R/B times
// the smoothed one-hot of label (a, j), zero where the label is ignored;
// the soft cross-entropy's mean over R rows then equals BLIP's
// sum_a weight_a * sum_j CE(a, j) / B.
func (t *Trainer) targets(b *Batch) []float32 {
	v := t.Model.Config.TextConfig.VocabSize
	rows := t.a * (t.ta - 1)
	out := make([]float32, rows*v)
	eps := t.Config.LabelSmoothing
	for r := range rows {
		w := float64(b.AnsWeight[r/(t.ta-1)])
		l := int(b.AnsLabels[r])
		if w == 0 || l < 0 || l >= v {
			continue
		}
		s := w * float64(rows) / float64(t.Config.BatchSize)
		row := out[r*v : (r+1)*v]
		if eps > 0 {
			u := float32(s * eps / float64(v))
			for j := range row {
				row[j] = u
			}
		}
		row[l] += float32(s * (1 - eps))
	}
	return out
}

// Step runs one step on b at the trainer's State and advances it.
func (t *Trainer) Step(b *Batch) (Metrics, error) {
	cfg, st := t.Config, &t.State
	lr := t.LR(st.Epoch, st.Step)
	if err := t.opt.SetLR(lr); err != nil {
		return Metrics{}, err
	}
	p, in := t.plan, t.in
	errs := []error{p.WriteF32(in.Patches, b.Patches), p.WriteI32(in.IDs, b.IDs), p.WriteF32(in.Mask, b.Mask)}
	switch cfg.Task {
	case "caption":
		errs = append(errs, p.WriteI32(in.Labels, b.Labels))
	case "vqa":
		errs = append(errs, p.WriteI32(in.AnsQ, b.AnsQ), p.WriteI32(in.AnsIDs, b.AnsIDs),
			p.WriteF32(in.AnsMask, b.AnsMask), p.WriteF32(in.Targets, t.targets(b)))
	}
	for _, err := range errs {
		if err != nil {
			return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
		}
	}
	r := rand.New(rand.NewPCG(t.seed, uint64(st.Step)))
	p.SetSeed(r.Uint64())
	if err := t.Model.Params.ZeroGrad(); err != nil {
		return Metrics{}, err
	}
	if err := p.Run(); err != nil {
		return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
	}
	m := Metrics{Step: st.Step + 1, Epoch: st.Epoch, Iter: st.Iter, LR: lr}
	v := make([]float32, 1)
	if err := p.ReadF32(t.loss, v); err != nil {
		return m, err
	}
	m.Loss = float64(v[0])
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return m, fmt.Errorf("%w at step %d (epoch %d, iteration %d): %g; the step was not applied", ErrNonFinite, m.Step, m.Epoch, m.Iter, m.Loss)
	}
	if err := t.opt.Step(); err != nil {
		return m, err
	}
	if err := t.be.Sync(); err != nil {
		return m, err
	}
	st.Step++
	st.Iter++
	if st.Iter >= st.EpochSteps {
		st.Epoch, st.Iter = st.Epoch+1, 0
		st.Pos = dataset.Position{Epoch: st.Epoch}
	}
	return m, nil
}
