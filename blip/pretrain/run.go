package pretrain

import (
	"bufio"
	"bytes"
	"encoding/json"
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
var ErrInterrupted = errors.New("pretrain: interrupted; a checkpoint was saved (resume with --resume)")

// Options are a run's inputs besides its config.
type Options struct {
	// Out holds checkpoint/, metrics.jsonl, loss.png and hf/.
	Out    string
	Resume bool
	// Strict makes a bad sample fatal (else it is skipped and counted).
	Strict bool
	// Progress, when set, is called after every step with its metrics
	// and the samples per second of the run so far.
	Progress func(m Metrics, samplesPerSec float64)
	// Begin, when set, is called once the run knows its size: the step
	// it starts from and the total number of steps.
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
	Exports map[string]string // kind -> HF folder
	Elapsed time.Duration
	Samples int64 // samples trained on in this process
}

// ExportNames are the folder names of the HF exports under OUT/hf.
var ExportNames = map[blip.ModelKind]string{
	blip.KindCaptioning: "captioning", blip.KindRetrieval: "retrieval", blip.KindQA: "vqa",
}

// CheckpointDir is where a run keeps its checkpoint.
func CheckpointDir(out string) string { return filepath.Join(out, "checkpoint") }

// Run pretrains on ds from scratch (or cfg.Init), or resumes from the
// checkpoint in opts.Out, and exports HF folders at the end.
func Run(cfg *Config, be gpu.Backend, ds dataset.Dataset, opts Options) (*Summary, error) {
	tok, err := tokenizer.LoadVocab(cfg.Vocab)
	if err != nil {
		return nil, fmt.Errorf("pretrain: vocab: %w", err)
	}
	if v := tok.VocabSize(); v > cfg.model.TextConfig.VocabSize {
		return nil, fmt.Errorf("pretrain: vocab %s has %d tokens, more than the model's vocab_size %d", cfg.Vocab, v, cfg.model.TextConfig.VocabSize)
	}
	if tok.Dec < 0 || tok.Enc < 0 {
		return nil, fmt.Errorf("pretrain: vocab %s lacks [DEC] or [ENC]", cfg.Vocab)
	}
	batcher := NewBatcher(cfg, ds, tok, opts.Strict)
	defer batcher.Close()
	epochSteps, err := batcher.EpochSteps()
	if err != nil {
		return nil, err
	}
	ckDir := CheckpointDir(opts.Out)
	var t *Trainer
	switch {
	case opts.Resume && HasCheckpoint(ckDir):
		t, err = Resume(ckDir, cfg, be, tok.Dec, tok.Enc, tok.Pad)
	case HasCheckpoint(ckDir):
		return nil, fmt.Errorf("pretrain: %s holds a checkpoint: resume it with --resume, or choose another --out", ckDir)
	default:
		src, done, err2 := InitSource(cfg)
		if err2 != nil {
			return nil, err2
		}
		t, err = NewTrainer(cfg, be, src, epochSteps, tok.Dec, tok.Enc, tok.Pad)
		done()
	}
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if t.State.EpochSteps != epochSteps {
		return nil, fmt.Errorf("pretrain: the checkpoint's epochs have %d steps, the data now gives %d: resume with the same data and batch size", t.State.EpochSteps, epochSteps)
	}
	metrics, err := OpenMetrics(filepath.Join(opts.Out, "metrics.jsonl"), t.State.Step)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()

	total := int64(cfg.Epochs) * int64(epochSteps)
	if opts.Begin != nil {
		opts.Begin(t.State.Step, total)
	}
	sum := &Summary{}
	start := time.Now()
	save := func() error { return t.Save(ckDir) }
	for t.State.Epoch < cfg.Epochs {
		pos := dataset.Position{Epoch: t.State.DataEpoch, Index: t.State.DataIndex}
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
		m, err := t.Step(batch)
		if err != nil {
			return nil, err
		}
		t.State.DataEpoch, t.State.DataIndex = next.Epoch, next.Index
		sum.Samples += int64(cfg.BatchSize)
		sps := float64(sum.Samples) / time.Since(start).Seconds()
		if err := metrics.Write(m, sps); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(m, sps)
		}
		sum.Last, sum.Steps = m, t.State.Step
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
	sum.Exports = map[string]string{}
	for _, kind := range blip.ExportKinds {
		dir := filepath.Join(opts.Out, "hf", ExportNames[kind])
		if err := t.Model.Export(dir, kind, cfg.Model, cfg.Vocab); err != nil {
			return nil, err
		}
		sum.Exports[ExportNames[kind]] = dir
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

// MetricsWriter appends a run's metrics as JSON lines (ReadMetrics reads
// them back).
type MetricsWriter struct {
	f *os.File
	w *bufio.Writer
}

type metricsLine struct {
	Metrics
	SamplesPerSec float64 `json:"samples_per_sec"`
}

// OpenMetrics opens path for appending, first dropping the lines of steps
// after keepThrough: on resume those steps run again.
func OpenMetrics(path string, keepThrough int64) (*MetricsWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	var kept []byte
	if data, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m Metrics
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step <= keepThrough {
				kept = append(append(kept, sc.Bytes()...), '\n')
			}
		}
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &MetricsWriter{f: f, w: bufio.NewWriter(f)}, nil
}

// Write appends one step's metrics and the run's samples per second.
func (m *MetricsWriter) Write(x Metrics, sps float64) error {
	b, err := json.Marshal(metricsLine{Metrics: x, SamplesPerSec: sps})
	if err != nil {
		return err
	}
	m.w.Write(append(b, '\n'))
	return m.w.Flush()
}

// Close flushes and closes the file.
func (m *MetricsWriter) Close() error {
	m.w.Flush()
	return m.f.Close()
}

// ReadMetrics reads a metrics.jsonl file.
func ReadMetrics(path string) ([]Metrics, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Metrics
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}
