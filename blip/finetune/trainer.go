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
	// retrieval: each sample's image id as an integer (ImageIDs); IDs and
	// Mask are then the captions' [CLS] caption [SEP] (B, T).
	ImageIdx []int64
	Keys     []string // the samples' names, for messages
}

// Metrics are one step's figures.
type Metrics struct {
	Step  int64   `json:"step"`
	Epoch int     `json:"epoch"`
	Iter  int     `json:"iter"`
	Loss  float64 `json:"loss"`
	LR    float64 `json:"lr"`
	// retrieval: the loss's parts (Loss = ITA + ITM), the step's
	// distillation weight and the temperature after the step.
	ITA   float64 `json:"loss_ita,omitempty"`
	ITM   float64 `json:"loss_itm,omitempty"`
	Alpha float64 `json:"alpha,omitempty"`
	Temp  float64 `json:"temp,omitempty"`
	// LossScale is the loss scale the step's backward was seeded with (fp16
	// runs; 0: none). Skipped says its scaled gradients overflowed, so
	// AdamW skipped the update (and the scale backed off); SkippedSteps
	// counts the skipped steps of the run so far.
	LossScale    float64 `json:"loss_scale,omitempty"`
	Skipped      bool    `json:"skipped,omitempty"`
	SkippedSteps int64   `json:"skipped_steps,omitempty"`
}

// State is where a run is: what a checkpoint restores besides tensors.
type State struct {
	Epoch, Iter int
	Step        int64
	EpochSteps  int
	// Pos is the data position after the last step's batch.
	Pos dataset.Position
	// QueuePtr is the next queue row to write (retrieval).
	QueuePtr int `json:",omitempty"`
}

// ErrNonFinite is returned by Step when the loss is NaN or infinite; the
// step is not applied.
var ErrNonFinite = errors.New("finetune: the loss is not finite")

// Trainer holds a model being fine-tuned, its compiled step and AdamW.
type Trainer struct {
	Config *Config
	// Model is the model of caption and vqa, Retrieval the one of
	// retrieval (with momentum copies); the other is nil.
	Model     *blip.Model
	Retrieval *blip.Pretrain
	State     State

	be    gpu.Backend
	plan  *graph.Plan
	in    *inputs
	loss  *graph.Tensor
	opt   *optim.AdamW
	sched optim.Cosine
	// a is the answer rows of a VQA step, ta their length; tgt holds the
	// step's soft targets (reused: at base vocab it is ~180 MB).
	a, ta int
	tgt   []float32
	// seed drives dropout.
	seed uint64
	// params are the trained parameters.
	params *graph.Params
	ret    *retrievalStep
	// lossSeed is the backward's seed, the loss scale, written every step
	// (fp16 runs; nil otherwise).
	lossSeed *graph.Tensor
}

// retrievalStep is what a retrieval step keeps besides the plan.
type retrievalStep struct {
	in  *blip.RetrievalInputs
	out *blip.RetrievalOutputs
	ema []gpu.Call
	// idxQueue is the image-id queue (Q), on the host: -100 (BLIP's fill,
	// which matches no id) until written.
	idxQueue []int64
	// enc, when >= 0, replaces the first token of the ITM rows.
	enc int32
}

// idxQueueEmpty is BLIP's initial idx_queue value.
const idxQueueEmpty = -100

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
	t := &Trainer{Config: cfg, Model: m, be: be, seed: cfg.Seed, params: m.Params}
	t.State.EpochSteps = epochSteps
	p := float32(cfg.Dropout)
	if m.TextEncoder != nil {
		m.TextEncoder.SetDropout(p)
	}
	if m.TextDecoder != nil {
		m.TextDecoder.Bert.SetDropout(p)
	}
	dt, _ := blip.ParsePrecision(cfg.Precision) // validated
	if err := m.Params.SetStorage(dt); err != nil {
		return nil, err
	}
	g := graph.New()
	switch cfg.Task {
	case "caption":
		t.in, t.loss = buildCaption(g, m, cfg.BatchSize, cfg.MaxLength, float32(cfg.LabelSmoothing))
	case "vqa":
		t.a, t.ta = cfg.BatchSize*cfg.MaxAnswers, cfg.AnswerLength
		t.in, t.loss = buildVQA(g, m, cfg.BatchSize, cfg.MaxLength, cfg.MaxAnswers, cfg.AnswerLength)
	}
	plan, err := g.Compile(be, t.compileConfig(g, dt, graph.Config{Loss: t.loss, Outputs: []*graph.Tensor{t.loss}}))
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	t.plan = plan
	if err := t.optimiser(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// compileConfig finishes the plan's config: fp16 runs seed the backward
// with the loss scale through an input, so that the scale can change
// between steps without compiling again.
func (t *Trainer) compileConfig(g *graph.Graph, dt gpu.DType, pc graph.Config) graph.Config {
	pc.LowActivations = blip.LowActivations()
	if dt == gpu.F16 {
		t.lossSeed = g.Input("loss_scale", gpu.F32, pc.Loss.Shape()...)
		pc.LossGrad = t.lossSeed
	}
	return pc
}

// optimiser creates AdamW over t.params (with a loss scaler when the step
// seeds its backward with one) and the schedule.
func (t *Trainer) optimiser() error {
	cfg := t.Config
	oc := optim.DefaultConfig()
	oc.LR, oc.WeightDecay, oc.MaxGradNorm = cfg.InitLR, cfg.WeightDecay, cfg.MaxGradNorm
	var err error
	t.opt, err = optim.NewGroups(t.params, oc, optim.DecayGroups(t.params, oc))
	if err != nil {
		return err
	}
	if t.lossSeed != nil {
		sc, err := optim.NewScaler(cfg.scalerConfig())
		if err != nil {
			return err
		}
		t.opt.SetScaler(sc)
	}
	t.sched = optim.Cosine{InitLR: cfg.InitLR, MinLR: cfg.MinLR, Epochs: cfg.Epochs}
	return t.sched.Validate()
}

// NewRetrievalTrainer compiles the retrieval step (ITC + ITM) for m (built
// by blip.NewRetrievalTrain from cfg.Init; a checkpoint is restored over
// it), fills the feature queues with normalised Gaussian rows and the id
// queue with -100 (BLIP's randn/normalize and full(-100)) and creates
// AdamW. enc is the first token of the ITM rows, or -1 to keep [CLS]
// (cfg.ITMToken).
func NewRetrievalTrainer(cfg *Config, m *blip.Pretrain, be gpu.Backend, epochSteps, enc int) (*Trainer, error) {
	if epochSteps < 1 {
		return nil, fmt.Errorf("finetune: an epoch of %d steps: the data holds fewer samples than one batch of %d", epochSteps, cfg.BatchSize)
	}
	if cfg.Task != "retrieval" {
		return nil, fmt.Errorf("finetune: NewRetrievalTrainer for task %s", cfg.Task)
	}
	t := &Trainer{Config: cfg, Retrieval: m, be: be, seed: cfg.Seed, params: m.Params}
	t.State.EpochSteps = epochSteps
	p := float32(cfg.Dropout)
	m.SetDropout(p)
	temp := float32(min(max(cfg.InitTemp, 0.001), 0.5))
	if cfg.FixedTemp > 0 {
		temp = float32(cfg.FixedTemp)
	}
	if err := m.Temp.Write([]float32{temp}); err != nil {
		return nil, err
	}
	m.Temp.Frozen = cfg.FixedTemp > 0
	r := &retrievalStep{enc: int32(enc), idxQueue: make([]int64, cfg.QueueSize)}
	for i := range r.idxQueue {
		r.idxQueue[i] = idxQueueEmpty
	}
	dt, _ := blip.ParsePrecision(cfg.Precision) // validated
	if err := m.Params.SetStorage(dt); err != nil {
		return nil, err
	}
	g := graph.New()
	r.in, r.out = m.BuildRetrievalStep(g, blip.RetrievalShape{Batch: cfg.BatchSize, TextLen: cfg.MaxLength, Queue: cfg.QueueSize})
	plan, err := g.Compile(be, t.compileConfig(g, dt, graph.Config{Loss: r.out.Loss, Outputs: []*graph.Tensor{r.out.Losses, r.out.ImageFeatM, r.out.TextFeatM}}))
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	t.plan, t.ret, t.loss = plan, r, r.out.Loss
	r.ema = m.MomentumCalls(float32(cfg.Momentum))
	if err := t.initQueues(); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.optimiser(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// initQueues fills both feature queues with normalised Gaussian rows,
// seeded by the run's seed.
func (t *Trainer) initQueues() error {
	img, txt := blip.RandomQueues(t.Config.Seed, t.Config.QueueSize, t.Retrieval.Config.ImageTextHiddenSize)
	if err := t.plan.WriteF32(t.ret.in.ImageQueue, img); err != nil {
		return err
	}
	return t.plan.WriteF32(t.ret.in.TextQueue, txt)
}

// Alpha is the distillation weight of the retrieval step at (epoch, iter):
// train_retrieval.py's alpha*min(1, i/len(data_loader)) in the first
// epoch, alpha after.
func (t *Trainer) Alpha(epoch, iter int) float64 {
	if epoch > 0 {
		return t.Config.Alpha
	}
	return t.Config.Alpha * math.Min(1, float64(iter)/float64(t.State.EpochSteps))
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
	if len(t.tgt) != rows*v {
		t.tgt = make([]float32, rows*v)
	}
	out := t.tgt
	clear(out)
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
	if t.ret != nil {
		return t.stepRetrieval(b)
	}
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
	scale, err := t.seedLossScale()
	if err != nil {
		return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
	}
	if err := t.params.ZeroGrad(); err != nil {
		return Metrics{}, err
	}
	if err := p.Run(); err != nil {
		return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
	}
	m := Metrics{Step: st.Step + 1, Epoch: st.Epoch, Iter: st.Iter, LR: lr, LossScale: scale}
	v := make([]float32, 1)
	if err := p.ReadF32(t.loss, v); err != nil {
		return m, err
	}
	m.Loss = float64(v[0])
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return m, fmt.Errorf("%w at step %d (epoch %d, iteration %d): %g; the step was not applied", ErrNonFinite, m.Step, m.Epoch, m.Iter, m.Loss)
	}
	if err := t.optStep(&m); err != nil {
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

// seedLossScale writes the loss scale into the backward's seed and
// returns it (0 without loss scaling).
func (t *Trainer) seedLossScale() (float64, error) { return t.opt.SeedScale(t.plan, t.lossSeed) }

// optStep records the AdamW step and notes in m whether it was skipped.
func (t *Trainer) optStep(m *Metrics) error {
	if err := t.opt.Step(); err != nil {
		return fmt.Errorf("finetune: step %d: %w", m.Step, err)
	}
	if sc := t.opt.Scaler(); sc != nil {
		m.Skipped, m.SkippedSteps = t.opt.Skipped(), sc.Skipped()
	}
	return nil
}

// mix64 is splitmix64's finaliser, to derive per-step seeds.
func mix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// stepRetrieval runs one retrieval step, as train_retrieval.py's loop body
// and BLIP_Retrieval.forward: the loss ITC + ITM on b; then the momentum
// features and image ids of b enter the queues, AdamW steps, the momentum
// copies move towards the parameters (BLIP's _momentum_update at the start
// of the next forward: the same values) and the temperature is clamped to
// [0.001, 0.5] (BLIP's clamp at the start of the next forward). Every
// random draw (dropout, the hard negatives) derives from (seed, step).
func (t *Trainer) stepRetrieval(b *Batch) (Metrics, error) {
	cfg, st, r := t.Config, &t.State, t.ret
	bs, tl := cfg.BatchSize, cfg.MaxLength
	if len(b.IDs) != bs*tl || len(b.Mask) != bs*tl || len(b.ImageIdx) != bs {
		return Metrics{}, fmt.Errorf("finetune: retrieval batch of %d ids, %d mask values and %d image ids, want %d x %d and %d",
			len(b.IDs), len(b.Mask), len(b.ImageIdx), bs, tl, bs)
	}
	lr := t.LR(st.Epoch, st.Step)
	if err := t.opt.SetLR(lr); err != nil {
		return Metrics{}, err
	}
	alpha := t.Alpha(st.Epoch, st.Iter)
	targets, negMask, err := blip.RetrievalTargets(b.ImageIdx, r.idxQueue)
	if err != nil {
		return Metrics{}, fmt.Errorf("finetune: step %d (%v): %w", st.Step+1, b.Keys, err)
	}
	enc := append([]int32(nil), b.IDs...)
	if r.enc >= 0 {
		for i := range bs {
			enc[i*tl] = r.enc
		}
	}
	rng := rand.New(rand.NewPCG(mix64(t.seed^0x6e6567), uint64(st.Step)))
	noise := make([]float32, 2*bs*bs)
	for i := range noise {
		noise[i] = float32(1 / rng.ExpFloat64())
	}
	p, in := t.plan, r.in
	for _, err := range []error{
		p.WriteF32(in.Patches, b.Patches), p.WriteI32(in.IDs, b.IDs), p.WriteI32(in.EncIDs, enc),
		p.WriteF32(in.Mask, b.Mask), p.WriteF32(in.Alpha, []float32{float32(alpha)}),
		p.WriteF32(in.Targets, targets), p.WriteF32(in.NegMask, negMask), p.WriteF32(in.NegNoise, noise),
	} {
		if err != nil {
			return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
		}
	}
	p.SetSeed(rand.New(rand.NewPCG(t.seed, uint64(st.Step))).Uint64())
	scale, err := t.seedLossScale()
	if err != nil {
		return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
	}
	if err := t.params.ZeroGrad(); err != nil {
		return Metrics{}, err
	}
	if err := p.Run(); err != nil {
		return Metrics{}, fmt.Errorf("finetune: step %d: %w", st.Step+1, err)
	}
	m := Metrics{Step: st.Step + 1, Epoch: st.Epoch, Iter: st.Iter, LR: lr, Alpha: alpha, LossScale: scale}
	var l [2]float32
	if err := p.ReadF32(r.out.Losses, l[:]); err != nil {
		return m, err
	}
	m.ITA, m.ITM = float64(l[0]), float64(l[1])
	m.Loss = m.ITA + m.ITM
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return m, fmt.Errorf("%w at step %d (epoch %d, iteration %d): ita %g, itm %g; the step was not applied",
			ErrNonFinite, m.Step, m.Epoch, m.Iter, m.ITA, m.ITM)
	}
	var calls []gpu.Call
	d := t.Retrieval.Config.ImageTextHiddenSize
	ptr := st.QueuePtr
	for _, pair := range [][2]*graph.Tensor{{r.out.ImageFeatM, in.ImageQueue}, {r.out.TextFeatM, in.TextQueue}} {
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
	for i, id := range b.ImageIdx {
		r.idxQueue[(st.QueuePtr+i)%cfg.QueueSize] = id
	}
	if err := t.optStep(&m); err != nil {
		return m, err
	}
	if err := t.be.Do(r.ema...); err != nil {
		return m, err
	}
	if err := t.be.Sync(); err != nil {
		return m, err
	}
	temp := make([]float32, 1)
	if err := t.Retrieval.Temp.Read(temp); err != nil {
		return m, err
	}
	if c := min(max(temp[0], 0.001), 0.5); c != temp[0] {
		if err := t.Retrieval.Temp.Write([]float32{c}); err != nil {
			return m, err
		}
		temp[0] = c
	}
	m.Temp = float64(temp[0])
	st.QueuePtr = ptr
	st.Step++
	st.Iter++
	if st.Iter >= st.EpochSteps {
		st.Epoch, st.Iter = st.Epoch+1, 0
		st.Pos = dataset.Position{Epoch: st.Epoch}
	}
	return m, nil
}
