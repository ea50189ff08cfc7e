package benchmodel

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"blip/blip"
	"blip/blip/finetune"
	"blip/blip/pretrain"
	"blip/gpu"
)

// Timing is one implementation's figure for a workload: seconds per call
// (a batch, a step) and the throughput it gives.
type Timing struct {
	Seconds   float64 `json:"seconds,omitempty"`
	PerSecond float64 `json:"per_second,omitempty"`
	// NewTokens is the shortest generated length (generation only), to
	// show that the work was the forced length.
	NewTokens int `json:"new_tokens,omitempty"`
	// Ratio is PyTorch's seconds over blip's (reference timings only):
	// above 1 blip is faster.
	Ratio float64 `json:"torch_over_blip,omitempty"`
	Error string  `json:"error,omitempty"`
	// Profile is blip's GPU time per kernel for one call (--profile).
	Profile *Profile `json:"profile,omitempty"`
}

// Profile is the device time of one workload call by kernel, from GPU
// timestamps around each dispatch in a separate, untimed run (one warm-up
// and one call, halved): the dispatches run one at a time there, so the
// sum is busy time without overlap, set against the timed wall clock.
type Profile struct {
	GPUSeconds float64       `json:"gpu_seconds"`
	Kernels    []KernelShare `json:"kernels"`
	Error      string        `json:"error,omitempty"`
}

// KernelShare is one kernel's part of a Profile.
type KernelShare struct {
	Name    string  `json:"name"`
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
}

// RunBlip times the workloads on be: one warm-up call (plan compilation,
// first-touch memory) then reps timed calls each. Models are built from
// random weights when a workload first needs them and freed when the
// next needs another; prec is their weight storage (blip.SetPrecision;
// mixed precision in the training steps). A failing workload gets its
// error and the rest run.
//
// With profile (and a backend that is a gpu.Profiler) each workload that
// ran is run once more with per-dispatch timestamps: Timing.Profile.
func RunBlip(be gpu.Backend, models map[string]Model, ws []Workload, reps int, prec gpu.DType, profile bool, progress io.Writer) []Timing {
	out := make([]Timing, len(ws))
	var cur *loaded
	defer func() { cur.close() }()
	for i, w := range ws {
		t0 := time.Now()
		run := func(reps int) (float64, int, error) {
			if w.Kind != "pretrain" && (cur == nil || cur.name != w.Model) {
				cur.close()
				cur = nil
				m, err := load(be, w.Model, models[w.Model], prec)
				if err != nil {
					return 0, 0, err
				}
				cur = m
			}
			switch w.Kind {
			case "generate":
				return timeGenerate(be, cur.m, w, reps)
			case "vision":
				s, err := timeVision(be, cur.m, w, reps)
				return s, 0, err
			case "itm":
				s, err := timeITM(be, cur.m, w, reps)
				return s, 0, err
			case "rerank":
				s, err := timeRerank(be, cur.m, w, reps)
				return s, 0, err
			case "train":
				s, err := timeTrain(be, cur, w, reps, prec)
				return s, 0, err
			case "pretrain":
				cur.close() // the pretraining model is built by its trainer
				cur = nil
				s, err := timePretrain(be, models[w.Model], w, reps, prec)
				return s, 0, err
			}
			return 0, 0, fmt.Errorf("unknown kind %q", w.Kind)
		}
		sec, tokens, err := run(reps)
		if err != nil {
			out[i] = Timing{Error: err.Error()}
		} else {
			out[i] = Timing{Seconds: sec, PerSecond: float64(w.Batch) / sec, NewTokens: tokens}
			if p, ok := be.(gpu.Profiler); ok && profile {
				out[i].Profile = profiled(be, p, func() error { _, _, err := run(1); return err })
			}
		}
		if progress != nil {
			fmt.Fprintf(progress, "blip %s: %s (%.0fs)\n", w.Name, brief(out[i]), time.Since(t0).Seconds())
		}
	}
	return out
}

// profiled runs f (a warm-up and one call) with kernel timing on and
// returns the device time per call by kernel, largest first.
func profiled(be gpu.Backend, p gpu.Profiler, f func() error) *Profile {
	if err := be.Sync(); err != nil {
		return &Profile{Error: err.Error()}
	}
	p.Profile() // drop what came before
	p.SetProfiling(true)
	err := f()
	if err == nil {
		err = be.Sync()
	}
	p.SetProfiling(false)
	times := p.Profile()
	if err != nil {
		return &Profile{Error: err.Error()}
	}
	const calls = 2 // the warm-up and the call
	var pr Profile
	for name, kt := range times {
		sec := kt.Nanos / 1e9 / calls
		pr.GPUSeconds += sec
		pr.Kernels = append(pr.Kernels, KernelShare{Name: name, Calls: kt.Calls / calls, Seconds: sec})
	}
	if len(times) == 0 {
		pr.Error = "no timestamps (the device has none, or nothing ran)"
	}
	slices.SortFunc(pr.Kernels, func(a, b KernelShare) int { return cmp.Compare(b.Seconds, a.Seconds) })
	return &pr
}

func brief(t Timing) string {
	if t.Error != "" {
		return "error: " + t.Error
	}
	return fmt.Sprintf("%.4f s", t.Seconds)
}

// loaded is a model loaded from a random-weight HF folder.
type loaded struct {
	name, dir string
	m         *blip.Model
}

func (l *loaded) close() {
	if l != nil {
		l.m.Close()
		os.RemoveAll(l.dir)
	}
}

// load writes a random folder for m and loads it. The folder is kept
// until close: the training step's config names it.
func load(be gpu.Backend, name string, m Model, prec gpu.DType) (*loaded, error) {
	dir, err := os.MkdirTemp("", "blip-bench-model-")
	if err != nil {
		return nil, err
	}
	if err := blip.WriteRandomFolder(dir, m.JSON, 1); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	bm, err := blip.LoadDir(dir, be)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := bm.SetPrecision(prec); err != nil {
		bm.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return &loaded{name, dir, bm}, nil
}

// timed runs f once to warm up, then reps times, and returns the mean
// seconds of the timed calls.
func timed(reps int, f func() error) (float64, error) {
	if err := f(); err != nil {
		return 0, err
	}
	t := time.Now()
	for range reps {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return time.Since(t).Seconds() / float64(reps), nil
}

// pixels is a deterministic batch of preprocessed images.
func pixels(n int, v *blip.VisionConfig) []float32 {
	p := make([]float32, n*v.NumChannels*v.ImageSize*v.ImageSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = float32(r.NormFloat64())
	}
	return p
}

// tokens is n rows of t random word ids (first: first), all unmasked.
func tokens(n, t, vocab int, first int32) ([]int32, []float32) {
	r := rand.New(rand.NewPCG(3, 4))
	ids, mask := make([]int32, n*t), make([]float32, n*t)
	for i := range ids {
		ids[i], mask[i] = int32(4+r.IntN(vocab-6)), 1
		if i%t == 0 {
			ids[i] = first
		}
	}
	return ids, mask
}

// timeGenerate captions the batch as `blip caption` does (the ViT plan is
// compiled per call there too; the decoder's plans are cached).
func timeGenerate(be gpu.Backend, m *blip.Model, w Workload, reps int) (float64, int, error) {
	px := pixels(w.Batch, &m.Config.VisionConfig)
	gen := m.CaptionConfig()
	gen.NumBeams, gen.MaxNewTokens, gen.MinNewTokens = w.Beams, w.Tokens, w.Tokens
	short := 1 << 30
	sec, err := timed(reps, func() error {
		out, err := m.GenerateCaptions(be, px, w.Batch, nil, gen)
		if err != nil {
			return err
		}
		for _, n := range out.Lengths {
			short = min(short, n-1) // the sequences start with [DEC]
		}
		return nil
	})
	return sec, short, err
}

// timeVision times the ViT forward alone: the images are on the device
// and the states stay there, as a PyTorch forward of device tensors.
func timeVision(be gpu.Backend, m *blip.Model, w Workload, reps int) (float64, error) {
	p, in, _, err := m.VisionPlan(be, w.Batch)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	patches, err := blip.Patchify(pixels(w.Batch, &m.Config.VisionConfig), w.Batch, &m.Config.VisionConfig)
	if err != nil {
		return 0, err
	}
	if err := p.WriteF32(in, patches); err != nil {
		return 0, err
	}
	return timed(reps, p.Run)
}

// itmChunk is how many images one vision run of the ITM workload takes.
const itmChunk = 32

// timeITM scores w.Batch (image, text) pairs, each with its own image,
// as retrieval re-ranking does: the ViT over the images in chunks, each
// chunk's states handed on the device to blip.ITMScorer (keys and values
// projected once per image), which then scores every pair in one run.
func timeITM(be gpu.Backend, m *blip.Model, w Workload, reps int) (float64, error) {
	v := &m.Config.VisionConfig
	chunk := min(w.Batch, itmChunk)
	p, in, out, err := m.VisionPlan(be, chunk)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	sc, err := m.NewITMScorer(be, w.Batch, w.Batch, w.TextLen)
	if err != nil {
		return 0, err
	}
	defer sc.Close()
	per := v.NumPatches() * v.NumChannels * v.PatchSize * v.PatchSize
	patches, err := blip.Patchify(pixels(w.Batch, v), w.Batch, v)
	if err != nil {
		return 0, err
	}
	ids, _ := tokens(w.Batch, w.TextLen, m.Config.TextConfig.VocabSize, 2)
	pairs := make([]blip.ITMPair, w.Batch)
	for i := range pairs {
		pairs[i] = blip.ITMPair{Image: i, Text: ids[i*w.TextLen : (i+1)*w.TextLen]}
	}
	states, err := p.View(out)
	if err != nil {
		return 0, err
	}
	inBuf := make([]float32, chunk*per)
	return timed(reps, func() error {
		for s := 0; s < w.Batch; s += chunk {
			n := min(chunk, w.Batch-s)
			clear(inBuf)
			copy(inBuf, patches[s*per:(s+n)*per])
			// Not waited for: the host prepares the next chunk while the
			// device runs this one (the write of its patches waits).
			if err := p.WriteF32(in, inBuf); err != nil {
				return err
			}
			if err := p.Record(); err != nil {
				return err
			}
			if err := sc.LoadStates(states, s, n); err != nil {
				return err
			}
		}
		_, err := sc.ScorePairs(pairs)
		return err
	})
}

// timeRerank re-ranks one image's top w.Batch texts by ITM, as
// retrieval's image-to-text re-ranking does (BLIP's evaluation: k = 128
// on Flickr30k): the image's ViT states are computed once, untimed, as
// retrieval computes every gallery image's at the ITC stage; timed, the
// scorer takes them (its keys and values projected once for the image)
// and scores every pair. PyTorch's side (torch_model.py) runs BLIP's
// evaluation the same way: cached ViT states, the text encoder over the
// pairs with the states repeated per pair.
func timeRerank(be gpu.Backend, m *blip.Model, w Workload, reps int) (float64, error) {
	v := &m.Config.VisionConfig
	p, in, out, err := m.VisionPlan(be, 1)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	patches, err := blip.Patchify(pixels(1, v), 1, v)
	if err != nil {
		return 0, err
	}
	if err := p.WriteF32(in, patches); err != nil {
		return 0, err
	}
	if err := p.Run(); err != nil {
		return 0, err
	}
	states, err := p.View(out)
	if err != nil {
		return 0, err
	}
	sc, err := m.NewITMScorer(be, 1, w.Batch, w.TextLen)
	if err != nil {
		return 0, err
	}
	defer sc.Close()
	ids, _ := tokens(w.Batch, w.TextLen, m.Config.TextConfig.VocabSize, 2)
	pairs := make([]blip.ITMPair, w.Batch)
	for i := range pairs {
		pairs[i] = blip.ITMPair{Image: 0, Text: ids[i*w.TextLen : (i+1)*w.TextLen]}
	}
	return timed(reps, func() error {
		if err := sc.LoadStates(states, 0, 1); err != nil {
			return err
		}
		_, err := sc.ScorePairs(pairs)
		return err
	})
}

// timeTrain times finetune's caption step (BLIP's captioning fine-tune:
// ViT + decoder, LM loss with label smoothing, AdamW) on the model,
// without dropout, as transformers' BLIP configs have none.
func timeTrain(be gpu.Backend, l *loaded, w Workload, reps int, prec gpu.DType) (float64, error) {
	m := l.m
	cfg := finetune.Defaults("caption")
	cfg.Init, cfg.BatchSize, cfg.MaxLength, cfg.Dropout = l.dir, w.Batch, w.TextLen, 0
	cfg.Precision = blip.PrecisionName(prec)
	tr, err := finetune.NewTrainer(&cfg, m, be, 1<<20)
	if err != nil {
		return 0, err
	}
	defer tr.Close()
	v, t := &m.Config.VisionConfig, &m.Config.TextConfig
	patches, err := blip.Patchify(pixels(w.Batch, v), w.Batch, v)
	if err != nil {
		return 0, err
	}
	ids, mask := tokens(w.Batch, w.TextLen, t.VocabSize, int32(t.BosTokenID))
	labels, err := blip.ShiftLabels(ids, w.Batch, w.TextLen, t.PadTokenID)
	if err != nil {
		return 0, err
	}
	b := &finetune.Batch{Patches: patches, IDs: ids, Mask: mask, Labels: labels}
	return timed(reps, func() error { _, err := tr.Step(b); return err })
}

// timePretrain times pretrain's full step (ITC with momentum encoders and
// queues, ITM with hard negatives, LM; AdamW; momentum and queue updates)
// on fresh weights, with texts of varied length as real batches have.
func timePretrain(be gpu.Backend, m Model, w Workload, reps int, prec gpu.DType) (float64, error) {
	js := fmt.Sprintf(`{"model": %s, "vocab": "unused", "batch_size": %d, "queue_size": %d, "max_length": %d, "workers": 1, "precision": %q}`,
		m.JSON, w.Batch, w.Queue, w.TextLen, blip.PrecisionName(prec))
	cfg, err := pretrain.Parse([]byte(js), "bench-model/pretrain.json")
	if err != nil {
		return 0, err
	}
	vocab := m.Config.TextConfig.VocabSize
	tr, err := pretrain.NewTrainer(cfg, be, blip.RandomInit{Seed: 1, Std: 0.02}, 1<<20, vocab-2, vocab-1, 0)
	if err != nil {
		return 0, err
	}
	defer tr.Close()
	v := &m.Config.VisionConfig
	patches, err := blip.Patchify(pixels(w.Batch, v), w.Batch, v)
	if err != nil {
		return 0, err
	}
	tl := w.TextLen
	ids, mask := tokens(w.Batch, tl, vocab, 2)
	for i := range w.Batch {
		n := min(tl, 8+(i*7)%max(tl-8, 1))
		ids[i*tl+n-1] = 3
		for j := n; j < tl; j++ {
			ids[i*tl+j], mask[i*tl+j] = 0, 0
		}
	}
	b := &pretrain.Batch{Patches: patches, IDs: ids, Mask: mask}
	return timed(reps, func() error { _, err := tr.Step(b); return err })
}
