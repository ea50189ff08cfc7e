package finetune

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"blip/blip"
	"blip/data/dataset"
	"blip/data/tokenizer"
	"blip/gpu"
)

// ErrInterrupted is returned when Options.Stop closed: the run saved a
// checkpoint and can be resumed.
var ErrInterrupted = errors.New("finetune: interrupted; a checkpoint was saved (resume with --resume)")

// Options are a run's inputs besides its config.
type Options struct {
	// Out holds checkpoint/, metrics.jsonl and hf/ (the fine-tuned model).
	Out    string
	Resume bool
	// Strict makes a bad sample fatal (else it is skipped and counted).
	Strict bool
	// Progress, when set, is called after every step.
	Progress func(m Metrics, samplesPerSec float64)
	// Begin, when set, is called once the run knows its size.
	Begin func(done, total int64)
	// Stop, when closed, ends the run after the current step with a
	// checkpoint (SIGINT).
	Stop <-chan struct{}
	// StopAfter > 0 acts as Stop once that many steps are done (tests).
	StopAfter int64
}

// Summary is what a finished run reports.
type Summary struct {
	Steps   int64
	Last    Metrics
	Data    dataset.Stats
	Model   string // the fine-tuned HF folder
	Elapsed time.Duration
	Samples int64 // samples trained on in this process
}

// ModelDir is where a run writes its fine-tuned HF folder.
func ModelDir(out string) string { return filepath.Join(out, "hf") }

// Run fine-tunes cfg.Init on ds (dataset.Pairs for caption and retrieval,
// a VQASet for vqa), or resumes the checkpoint in opts.Out, and writes the
// fine-tuned HF folder (of cfg.Init's kind) to ModelDir(opts.Out).
func Run(cfg *Config, be gpu.Backend, ds dataset.Indexed, opts Options) (*Summary, error) {
	folder, err := blip.OpenFolder(cfg.Init)
	if err != nil {
		return nil, fmt.Errorf("finetune: init: %w", err)
	}
	vocab := folder.VocabPath
	if vocab == "" {
		folder.Close()
		return nil, fmt.Errorf("finetune: init %s has no %s", cfg.Init, blip.VocabName)
	}
	configJSON, err := os.ReadFile(filepath.Join(cfg.Init, blip.ConfigName))
	if err != nil {
		folder.Close()
		return nil, err
	}
	var (
		m    *blip.Model    // caption, vqa
		rm   *blip.Pretrain // retrieval
		bcfg *blip.BlipConfig
	)
	if cfg.Task == "retrieval" {
		if folder.Kind != blip.KindRetrieval {
			folder.Close()
			return nil, fmt.Errorf("finetune: task retrieval needs a %v folder, %s is a %v", blip.KindRetrieval, cfg.Init, folder.Kind)
		}
		rm, err = blip.NewRetrievalTrain(folder.Config, retrievalSource{ck: folder.Weights, temp: float32(cfg.InitTemp)}, be)
		folder.Close()
		if err != nil {
			return nil, fmt.Errorf("finetune: init %s: %w", cfg.Init, err)
		}
		defer rm.Close()
		bcfg = rm.Config
	} else {
		m, err = blip.Load(folder, be)
		folder.Close()
		if err != nil {
			return nil, err
		}
		defer m.Close()
		bcfg = m.Config
	}
	tok, err := tokenizer.LoadVocab(vocab)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	enc := -1
	switch {
	case cfg.Task != "retrieval" && tok.Dec < 0:
		return nil, fmt.Errorf("finetune: vocab %s lacks [DEC]", vocab)
	case cfg.Task == "retrieval" && cfg.ITMToken == "enc":
		if tok.Enc < 0 || tok.Enc >= bcfg.TextConfig.VocabSize {
			return nil, fmt.Errorf("finetune: itm_token enc: vocab %s has no [ENC] within the model's %d embeddings", vocab, bcfg.TextConfig.VocabSize)
		}
		enc = tok.Enc
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	batcher, err := NewBatcher(cfg, &bcfg.VisionConfig, ds, tok, Tokens{Dec: tok.Dec, Pad: tok.Pad}, opts.Strict)
	if err != nil {
		return nil, err
	}
	defer batcher.Close()
	epochSteps := batcher.EpochSteps()
	var t *Trainer
	if rm != nil {
		t, err = NewRetrievalTrainer(cfg, rm, be, epochSteps, enc)
	} else {
		t, err = NewTrainer(cfg, m, be, epochSteps)
	}
	if err != nil {
		return nil, err
	}
	defer t.Close()
	ckDir := CheckpointDir(opts.Out)
	switch {
	case opts.Resume && HasCheckpoint(ckDir):
		if err := t.restore(ckDir); err != nil {
			return nil, err
		}
	case HasCheckpoint(ckDir):
		return nil, fmt.Errorf("finetune: %s holds a checkpoint: resume it with --resume, or choose another --out", ckDir)
	}
	metrics, err := openMetrics(filepath.Join(opts.Out, "metrics.jsonl"), t.State.Step)
	if err != nil {
		return nil, err
	}
	defer metrics.close()

	total := int64(cfg.Epochs) * int64(epochSteps)
	if opts.Begin != nil {
		opts.Begin(t.State.Step, total)
	}
	sum := &Summary{}
	start := time.Now()
	save := func() error { return t.Save(ckDir) }
	for t.State.Epoch < cfg.Epochs {
		pos := t.State.Pos
		if t.State.Iter == 0 {
			pos = dataset.Position{Epoch: t.State.Epoch}
		}
		batch, next, err := batcher.Next(pos)
		if errors.Is(err, ErrEpochEnd) {
			t.State.Epoch, t.State.Iter = t.State.Epoch+1, 0
			continue
		}
		if err != nil {
			return nil, err
		}
		mt, err := t.Step(batch)
		if err != nil {
			return nil, err
		}
		if t.State.Iter != 0 {
			t.State.Pos = next
		}
		sum.Samples += int64(cfg.BatchSize)
		sps := float64(sum.Samples) / time.Since(start).Seconds()
		if err := metrics.write(mt); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(mt, sps)
		}
		sum.Last, sum.Steps = mt, t.State.Step
		epochDone := t.State.Iter == 0
		if (cfg.CheckpointEvery > 0 && t.State.Step%int64(cfg.CheckpointEvery) == 0) || epochDone {
			if err := save(); err != nil {
				return nil, err
			}
		}
		if stopped(opts.Stop) || (opts.StopAfter > 0 && t.State.Step >= opts.StopAfter) {
			if err := save(); err != nil {
				return nil, err
			}
			sum.Data = batcher.Stats()
			return sum, ErrInterrupted
		}
	}
	if err := save(); err != nil {
		return nil, err
	}
	sum.Data = batcher.Stats()
	sum.Elapsed = time.Since(start)
	sum.Model = ModelDir(opts.Out)
	if rm != nil {
		err = rm.Export(sum.Model, blip.KindRetrieval, configJSON, vocab)
	} else {
		err = m.Save(sum.Model, configJSON, vocab)
	}
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// retrievalSource reads an HF retrieval folder's weights and gives the
// temperature, which HF folders do not keep, the value temp (the trainer
// sets it from the config in any case). Momentum copies, absent from the
// folder, start as copies of the weights (Has reports them missing).
type retrievalSource struct {
	ck   *blip.Checkpoint
	temp float32
}

func (s retrievalSource) Has(name string) bool { return s.ck.Has(name) }

func (s retrievalSource) Require(name string, shape ...int) ([]float32, error) {
	if name == "temp" && !s.ck.Has(name) {
		return []float32{s.temp}, nil
	}
	return s.ck.Require(name, shape...)
}

func (s retrievalSource) Ignore(names ...string) { s.ck.Ignore(names...) }

func stopped(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}
