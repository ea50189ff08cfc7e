package pretrain

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"blip/blip"
	"blip/data/dataset"
	"blip/data/safetensors"
	"blip/data/shapes"
	"blip/gpu/cpu"
)

var (
	worldOnce sync.Once
	worldDir  string
	worldErr  error
)

// world writes a small shapes world once per test binary.
func world(t *testing.T) string {
	t.Helper()
	worldOnce.Do(func() {
		dir, err := os.MkdirTemp("", "blip-pretrain-world-")
		if err != nil {
			worldErr = err
			return
		}
		c := shapes.DefaultConfig()
		c.N, c.Supersample = 60, 1
		d, err := shapes.Generate(c)
		if err != nil {
			worldErr = err
			return
		}
		worldErr = shapes.Write(dir, d, shapes.WriteOptions{FlattenTrain: true})
		worldDir = dir
	})
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return worldDir
}

// tinyModel is a small model config for the shapes world's vocabulary.
func tinyModel(vocab int) string {
	return fmt.Sprintf(`{
  "architectures": ["BlipForImageTextRetrieval"], "model_type": "blip", "image_text_hidden_size": 16,
  "text_config": {"vocab_size": %d, "hidden_size": 32, "encoder_hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 32, "is_decoder": true,
    "bos_token_id": %d, "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3},
  "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
    "image_size": 64, "patch_size": 16, "layer_norm_eps": 1e-6}
}`, vocab, vocab-2)
}

// testConfig returns a pretraining config over the world's train split.
func testConfig(t *testing.T, edit func(string) string) *Config {
	t.Helper()
	dir := world(t)
	vocab := len(shapes.Vocabulary())
	js := fmt.Sprintf(`{"model": %s, "vocab": %q, "batch_size": 4, "max_epoch": 2, "steps_per_epoch": 3,
  "queue_size": 10, "max_length": 16, "warmup_steps": 2, "init_lr": 1e-3, "workers": 2, "checkpoint_every": 2, "log_every": 1}`,
		tinyModel(vocab), filepath.Join(dir, "vocab.txt"))
	if edit != nil {
		js = edit(js)
	}
	cfg, err := Parse([]byte(js), filepath.Join(t.TempDir(), "pretrain.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func trainSet(t *testing.T) dataset.Dataset {
	t.Helper()
	dir := world(t)
	p, err := dataset.ReadPairs(dir, dataset.JSONOptions{}, filepath.Join(dir, "train.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkpointTensors reads every tensor of a checkpoint.
func checkpointTensors(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(CheckpointDir(dir), stateTensors))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	for _, n := range f.Names() {
		b, err := f.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = append([]byte(nil), b...)
	}
	return out
}

// TestResumeEqualsUninterrupted runs 6 steps (2 epochs of 3, dropout,
// augmentation, shuffling and queue wrap-around on) in one go, and again
// interrupted after 2 and after 5 steps and resumed each time: the final
// checkpoints (parameters, momentum copies, queues, optimiser state) must
// be bit-identical, and so must the metrics.
func TestResumeEqualsUninterrupted(t *testing.T) {
	be := cpu.New()
	cfg := testConfig(t, nil)
	ds := trainSet(t)
	a := t.TempDir()
	sa, err := Run(cfg, be, ds, Options{Out: a})
	if err != nil {
		t.Fatal(err)
	}
	if sa.Steps != 6 {
		t.Fatalf("ran %d steps, want 6", sa.Steps)
	}
	b := t.TempDir()
	for _, stop := range []int64{2, 5} {
		_, err := Run(cfg, be, ds, Options{Out: b, Resume: true, StopAfter: stop})
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("stop after %d: %v", stop, err)
		}
	}
	if _, err := Run(cfg, be, ds, Options{Out: b}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("a second run over a checkpoint without --resume: %v", err)
	}
	if _, err := Run(cfg, be, ds, Options{Out: b, Resume: true}); err != nil {
		t.Fatal(err)
	}
	ta, tb := checkpointTensors(t, a), checkpointTensors(t, b)
	if len(ta) != len(tb) || len(ta) == 0 {
		t.Fatalf("%d tensors vs %d", len(ta), len(tb))
	}
	for n, x := range ta {
		if !bytes.Equal(x, tb[n]) {
			t.Errorf("tensor %s differs between the uninterrupted and the resumed run", n)
		}
	}
	ma, err := ReadMetrics(filepath.Join(a, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := ReadMetrics(filepath.Join(b, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ma) != 6 || len(mb) != 6 {
		t.Fatalf("metrics lines %d and %d, want 6", len(ma), len(mb))
	}
	for i := range ma {
		if ma[i] != mb[i] {
			t.Errorf("step %d metrics: %+v uninterrupted, %+v resumed", i+1, ma[i], mb[i])
		}
	}
	// The queue wrapped: 6 steps of 4 rows in a queue of 10.
	st, err := os.ReadFile(filepath.Join(CheckpointDir(a), stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), `"queue_ptr": 4`) {
		t.Errorf("queue pointer after 24 rows in 10: want 4 in %s", st)
	}
	for _, kind := range blip.ExportKinds {
		dir := sa.Exports[ExportNames[kind]]
		m, err := blip.LoadDir(dir, be)
		if err != nil {
			t.Errorf("export %v: %v", kind, err)
			continue
		}
		if m.Kind != kind {
			t.Errorf("export %s loads as %v", dir, m.Kind)
		}
		m.Close()
	}
}

// TestPretrainLearns checks that the losses fall on the shapes world.
func TestPretrainLearns(t *testing.T) {
	be := cpu.New()
	cfg := testConfig(t, func(s string) string {
		return strings.Replace(strings.Replace(s, `"max_epoch": 2, "steps_per_epoch": 3`, `"max_epoch": 1, "steps_per_epoch": 60`, 1),
			`"checkpoint_every": 2`, `"checkpoint_every": 0`, 1)
	})
	out := t.TempDir()
	var ms []Metrics
	if _, err := Run(cfg, be, trainSet(t), Options{Out: out, Progress: func(m Metrics, _ float64) { ms = append(ms, m) }}); err != nil {
		t.Fatal(err)
	}
	mean := func(ms []Metrics, f func(Metrics) float64) float64 {
		var s float64
		for _, m := range ms {
			s += f(m)
		}
		return s / float64(len(ms))
	}
	for _, c := range []struct {
		name string
		f    func(Metrics) float64
	}{{"lm", func(m Metrics) float64 { return m.LM }}, {"total", func(m Metrics) float64 { return m.Loss }}} {
		first, last := mean(ms[:5], c.f), mean(ms[len(ms)-5:], c.f)
		t.Logf("%s loss: first 5 steps %.4f, last 5 %.4f", c.name, first, last)
		if !(last < 0.8*first) {
			t.Errorf("%s loss did not fall: %.4f -> %.4f", c.name, first, last)
		}
	}
}

// TestFixedTemp holds the temperature: frozen, it stays put through steps
// that would move a learned one.
func TestFixedTemp(t *testing.T) {
	cfg := testConfig(t, func(s string) string {
		return strings.Replace(s, `"workers": 2`, `"workers": 2, "fixed_temp": 0.05`, 1)
	})
	var temps []float64
	if _, err := Run(cfg, cpu.New(), trainSet(t), Options{Out: t.TempDir(), StopAfter: 3, Progress: func(m Metrics, _ float64) { temps = append(temps, m.Temp) }}); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	for i, x := range temps {
		if x != float64(float32(0.05)) {
			t.Fatalf("step %d: temperature %v, want it held at 0.05", i+1, x)
		}
	}
}

// TestNonFiniteLossStops poisons a weight: the step reports the loss
// components and applies nothing, and the run keeps its last checkpoint.
func TestNonFiniteLossStops(t *testing.T) {
	be := cpu.New()
	cfg := testConfig(t, nil)
	tok, err := loadTok(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(cfg, be, blip.RandomInit{Seed: 1, Std: 0.02}, 3, tok[0], tok[1], tok[2])
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	p := tr.Model.Params.Get("text_proj.weight")
	v := make([]float32, p.Numel())
	v[0] = float32(math.NaN())
	if err := p.Write(v); err != nil {
		t.Fatal(err)
	}
	n := cfg.BatchSize * cfg.MaxLength
	vc := &cfg.model.VisionConfig
	b := &Batch{Patches: make([]float32, cfg.BatchSize*vc.NumPatches()*3*vc.PatchSize*vc.PatchSize), IDs: make([]int32, n), Mask: make([]float32, n)}
	for i := range cfg.BatchSize {
		b.IDs[i*cfg.MaxLength], b.IDs[i*cfg.MaxLength+1], b.IDs[i*cfg.MaxLength+2] = 2, 7, 3
		for j := range 3 {
			b.Mask[i*cfg.MaxLength+j] = 1
		}
	}
	_, err = tr.Step(b)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "ita") {
		t.Fatalf("step on a NaN weight: %v", err)
	}
	if tr.State.Step != 0 {
		t.Errorf("the failed step was counted")
	}
}

func loadTok(cfg *Config) ([3]int, error) {
	var out [3]int
	data, err := os.ReadFile(cfg.Vocab)
	if err != nil {
		return out, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i, l := range lines {
		switch l {
		case "[DEC]":
			out[0] = i
		case "[ENC]":
			out[1] = i
		case "[PAD]":
			out[2] = i
		}
	}
	return out, nil
}

// TestConfigRefusesImpossibleValues names the setting in each refusal.
func TestConfigRefusesImpossibleValues(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{`"queue_size": 10`, `"queue_size": 3`, "queue_size = 3"},
		{`"init_lr": 1e-3`, `"init_lr": 0`, "init_lr = 0"},
		{`"init_lr": 1e-3`, `"init_lr": -1`, "init_lr = -1"},
		{`"batch_size": 4`, `"batch_size": 1`, "batch_size = 1"},
		{`"max_length": 16`, `"max_length": 40`, "max_position_embeddings"},
		{`"workers": 2`, `"workers": 2, "bogus": 1`, "bogus"},
		{`"is_decoder": true`, `"is_decoder": false`, "is_decoder"},
		{`"workers": 2`, `"workers": 2, "fixed_temp": 0.9`, "fixed_temp = 0.9"},
		{`"workers": 2`, `"workers": 2, "precision": "fp8"`, `precision = "fp8"`},
	} {
		_, err := func() (_ *Config, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			dir := world(t)
			vocab := len(shapes.Vocabulary())
			js := fmt.Sprintf(`{"model": %s, "vocab": %q, "batch_size": 4, "queue_size": 10, "max_length": 16, "init_lr": 1e-3, "workers": 2}`,
				tinyModel(vocab), filepath.Join(dir, "vocab.txt"))
			return Parse([]byte(strings.Replace(js, tc.from, tc.to, 1)), "pretrain.json")
		}()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.to, err, tc.want)
		}
	}
}

// TestBadSamplesSkippedOrFatal puts an unreadable image and an empty
// caption among good pairs: a run skips and counts both; --strict stops at
// the first, naming it.
func TestBadSamplesSkippedOrFatal(t *testing.T) {
	dir := world(t)
	entries, err := dataset.ReadAnnotations(filepath.Join(dir, "train.json"), dir, dataset.JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "broken.png"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	var js []string
	for i, e := range entries[:10] {
		js = append(js, fmt.Sprintf(`{"image": %q, "caption": %q}`, e.Path, e.Captions[0]))
		if i == 2 {
			js = append(js, fmt.Sprintf(`{"image": %q, "caption": "a broken file"}`, filepath.Join(tmp, "broken.png")))
		}
		if i == 5 {
			js = append(js, fmt.Sprintf(`{"image": %q, "caption": "  ...  "}`, e.Path))
		}
	}
	ann := filepath.Join(tmp, "ann.json")
	if err := os.WriteFile(ann, []byte("["+strings.Join(js, ",\n")+"]"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.ReadPairs(tmp, dataset.JSONOptions{}, ann)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, func(s string) string {
		return strings.Replace(s, `"max_epoch": 2, "steps_per_epoch": 3`, `"max_epoch": 1, "steps_per_epoch": 0`, 1)
	})
	be := cpu.New()
	sum, err := Run(cfg, be, ds, Options{Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Data.Skipped != 2 || sum.Steps != 2 {
		t.Errorf("skipped %d samples in %d steps (%s), want 2 skipped, 2 steps of 4 from 10 good", sum.Data.Skipped, sum.Steps, sum.Data)
	}
	_, err = Run(cfg, be, ds, Options{Out: t.TempDir(), Strict: true})
	if err == nil || !strings.Contains(err.Error(), "broken.png") {
		t.Errorf("strict run: %v, want an error naming broken.png", err)
	}
}
