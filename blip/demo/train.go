package demo

import (
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"blip/blip"
	"blip/blip/pretrain"
	"blip/data/preprocess"
	"blip/data/shapes"
	"blip/data/tokenizer"
	"blip/gpu"
)

// pair is one training (image, caption) pair: the image's index in the
// split and the caption's token ids, padded.
type pair struct {
	image int
	ids   []int32
	mask  []float32
}

// loadPixels reads the split's images from the world folder and
// preprocesses them as the exported folders' processor does (resize to the
// model size, CLIP normalisation).
func loadPixels(world string, scenes []shapes.Scene, size int) ([]float32, error) {
	proc := preprocess.NewProcessor(size)
	imgs := make([]image.Image, len(scenes))
	for i := range scenes {
		img, err := preprocess.Load(filepath.Join(world, scenes[i].Image))
		if err != nil {
			return nil, err
		}
		imgs[i] = img
	}
	return proc.Batch(imgs)
}

// trainResult is what training leaves for the evaluation and the report.
type trainResult struct {
	Metrics   []pretrain.Metrics
	Exports   map[string]string
	Elapsed   time.Duration
	PerSecond float64 // samples per second
}

// train pretrains the demo model on the world's train split.
//
// The step is blip/pretrain's Trainer (ITC with momentum distillation and
// queues, ITM with hard negatives, LM with label smoothing, AdamW, the
// warmup/step-decay schedule). Batches are built here instead of by
// pretrain.Run's loader: that loader applies BLIP's training augmentation,
// whose random horizontal flip and crops contradict this world's captions
// ("on the left", "left of"), so the demo trains on the images as they
// are, shuffled per epoch, every paraphrase a pair.
func train(o *Options, be gpu.Backend, world string, scenes []shapes.Scene) (*trainResult, error) {
	// Absolute: the config resolves relative paths against its own
	// folder (o.Out), not the working directory.
	vocabPath, err := filepath.Abs(filepath.Join(world, shapes.VocabFile))
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.LoadVocab(vocabPath)
	if err != nil {
		return nil, err
	}
	m := o.Model
	nPairs, captioned := 0, 0
	for i := range scenes {
		nPairs += len(scenes[i].Captions)
		if len(scenes[i].Captions) > 0 {
			captioned++
		}
	}
	if captioned < o.BatchSize {
		return nil, fmt.Errorf("demo: %d captioned train images: a batch needs %d distinct ones", captioned, o.BatchSize)
	}
	epochSteps := max(1, nPairs/o.BatchSize)
	epochs := (o.Steps + epochSteps - 1) / epochSteps
	cfgJSON := fmt.Sprintf(`{"model": %s, "vocab": %q, "batch_size": %d, "max_epoch": %d, "steps_per_epoch": %d,
  "queue_size": %d, "max_length": %d, "max_words": 30, "warmup_steps": %d, "init_lr": %g, "min_lr": %g, "warmup_lr": %g,
  "lr_decay_rate": 0.9, "alpha": %g, "alpha_ramp_epochs": 1, "momentum": %g, "fixed_temp": %g, "dropout": 0, "weight_decay": 0.05, "max_grad_norm": 1, "init_std": %g, "init_vision_position_std": %g,
  "min_scale": 1, "rand_augment": false, "seed": %d, "workers": 1, "checkpoint_every": 0, "log_every": 1}`,
		o.modelJSON(tok.VocabSize()), vocabPath, o.BatchSize, epochs, epochSteps,
		o.QueueSize, o.textLength(), o.WarmupSteps, o.LR, o.LR/100, o.LR/100, o.Alpha, o.Momentum, o.Temp, o.InitStd, o.PositionStd, uint64(o.Seed))
	cfg, err := pretrain.Parse([]byte(cfgJSON), filepath.Join(o.Out, "pretrain.json"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Out, "pretrain.json"), []byte(cfgJSON+"\n"), 0o644); err != nil {
		return nil, err
	}
	vc := &cfg.BlipConfig().VisionConfig

	o.logf("pretrain: %d train images, %d pairs; %d steps of %d (%d per epoch)", len(scenes), nPairs, o.Steps, o.BatchSize, epochSteps)
	pixels, err := loadPixels(world, scenes, m.ImageSize)
	if err != nil {
		return nil, err
	}
	patches, err := blip.Patchify(pixels, len(scenes), vc)
	if err != nil {
		return nil, err
	}
	per := len(patches) / len(scenes)
	var pairs []pair
	for i := range scenes {
		for _, c := range scenes[i].Captions {
			enc := tok.EncodeWith(tokenizer.PreCaption(c, cfg.MaxWords), tokenizer.Options{MaxLength: cfg.MaxLength, PadTo: cfg.MaxLength})
			p := pair{image: i, ids: make([]int32, len(enc.IDs)), mask: make([]float32, len(enc.IDs))}
			for j, id := range enc.IDs {
				p.ids[j], p.mask[j] = int32(id), float32(enc.AttentionMask[j])
			}
			pairs = append(pairs, p)
		}
	}

	src, done, err := pretrain.InitSource(cfg)
	if err != nil {
		return nil, err
	}
	t, err := pretrain.NewTrainer(cfg, be, src, epochSteps, tok.Dec, tok.Enc, tok.Pad)
	done()
	if err != nil {
		return nil, err
	}
	defer t.Close()

	mw, err := pretrain.OpenMetrics(filepath.Join(o.Out, "metrics.jsonl"), 0)
	if err != nil {
		return nil, err
	}
	defer mw.Close()

	res := &trainResult{}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0xdea0))
	order := make([]int, len(pairs))
	start := time.Now()
	lastLog := start
	b := &pretrain.Batch{
		Patches: make([]float32, o.BatchSize*per),
		IDs:     make([]int32, o.BatchSize*cfg.MaxLength),
		Mask:    make([]float32, o.BatchSize*cfg.MaxLength),
		Keys:    make([]string, o.BatchSize),
	}
	pos := len(order)
	for step := 0; step < o.Steps; step++ {
		// A batch holds distinct images: ITC's one-hot targets would
		// otherwise call another paraphrase of the same image a negative.
		seen := map[int]bool{}
		for k := 0; k < o.BatchSize; {
			if pos >= len(order) {
				for i := range order {
					order[i] = i
				}
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				pos = 0
			}
			p := pairs[order[pos]]
			pos++
			if seen[p.image] {
				continue
			}
			seen[p.image] = true
			copy(b.Patches[k*per:(k+1)*per], patches[p.image*per:(p.image+1)*per])
			copy(b.IDs[k*cfg.MaxLength:], p.ids)
			copy(b.Mask[k*cfg.MaxLength:], p.mask)
			b.Keys[k] = scenes[p.image].Image
			k++
		}
		mt, err := t.Step(b)
		if err != nil {
			return nil, err
		}
		res.Metrics = append(res.Metrics, mt)
		el := time.Since(start).Seconds()
		if err := mw.Write(mt, float64((step+1)*o.BatchSize)/el); err != nil {
			return nil, err
		}
		if time.Since(lastLog) > 10*time.Second || step == o.Steps-1 {
			lastLog = time.Now()
			o.logf("  step %5d/%d  loss %.3f (ita %.3f itm %.3f lm %.3f)  lr %.2g  %.0f samples/s  %.0fs",
				mt.Step, o.Steps, mt.Loss, mt.ITA, mt.ITM, mt.LM, mt.LR, float64((step+1)*o.BatchSize)/el, el)
		}
	}
	res.Elapsed = time.Since(start)
	res.PerSecond = float64(o.Steps*o.BatchSize) / res.Elapsed.Seconds()
	res.Exports = map[string]string{}
	for _, kind := range blip.ExportKinds {
		dir := filepath.Join(o.Out, "hf", pretrain.ExportNames[kind])
		if err := t.Model.Export(dir, kind, cfg.Model, cfg.Vocab); err != nil {
			return nil, err
		}
		res.Exports[pretrain.ExportNames[kind]] = dir
	}
	return res, nil
}
