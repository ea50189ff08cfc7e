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

// Run fine-tunes cfg.Init on ds (dataset.Pairs for caption, a VQASet for
// vqa), or resumes the checkpoint in opts.Out, and writes the fine-tuned
// HF folder to ModelDir(opts.Out).
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
	m, err := blip.Load(folder, be)
	folder.Close()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tok, err := tokenizer.LoadVocab(vocab)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	if tok.Dec < 0 {
		return nil, fmt.Errorf("finetune: vocab %s lacks [DEC]", vocab)
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	batcher, err := NewBatcher(cfg, &m.Config.VisionConfig, ds, tok, Tokens{Dec: tok.Dec, Pad: tok.Pad}, opts.Strict)
	if err != nil {
		return nil, err
	}
	defer batcher.Close()
	epochSteps := batcher.EpochSteps()
	t, err := NewTrainer(cfg, m, be, epochSteps)
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
	if err := m.Save(sum.Model, configJSON, vocab); err != nil {
		return nil, err
	}
	return sum, nil
}

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
