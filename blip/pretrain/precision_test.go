package pretrain

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blip/blip"
	"blip/data/dataset"
	"blip/data/safetensors"
	"blip/data/shapes"
	"blip/data/tokenizer"
	"blip/gpu/cpu"
	"blip/optim"
)

// TestMixedPrecision trains the same run with fp32, bf16 and fp16 weight
// copies (fp32 master weights): the first step's losses agree to the
// weights' rounding, the 16-bit runs differ from fp32 (their copies are
// read), and their losses fall as fp32's do. Only fp16 scales its loss:
// its products, the backward's included, read f16 operands (as autocast),
// so from 2^16 its first few steps overflow and are skipped, the scale
// halving, before it trains; at loss scale 1 nothing overflows, and the
// first step's loss (a forward before any update) is the same.
func TestMixedPrecision(t *testing.T) {
	const steps = 30
	runs := map[string][]Metrics{}
	for _, prec := range []string{"fp32", "bf16", "fp16", "fp16-scale1"} {
		set := `"precision": "` + prec + `"`
		if prec == "fp16-scale1" {
			set = `"precision": "fp16", "loss_scale": 1`
		}
		cfg := testConfig(t, func(s string) string {
			s = strings.Replace(s, `"max_epoch": 2, "steps_per_epoch": 3`, `"max_epoch": 1, "steps_per_epoch": 60`, 1)
			s = strings.Replace(s, `"checkpoint_every": 2`, `"checkpoint_every": 0`, 1)
			return strings.Replace(s, `"log_every": 1`, `"log_every": 1, `+set, 1)
		})
		var ms []Metrics
		_, err := Run(cfg, cpu.New(), trainSet(t), Options{Out: t.TempDir(), StopAfter: steps, Progress: func(m Metrics, _ float64) { ms = append(ms, m) }})
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("%s: %v", prec, err)
		}
		runs[prec] = ms
	}
	// The products read f16 operands, the backward's too (gpu.Gemm.F16, as
	// autocast), so at 2^16 the scaled output gradients of the first steps
	// overflow f16: those steps are skipped, the scale halving each time,
	// and then it trains; at scale 1 nothing overflows. The first step's
	// loss (before any update) is the same forward either way.
	for prec, ms := range runs {
		start := map[string]float64{"fp16": 65536, "fp16-scale1": 1}[prec]
		skipped := 0
		for i, m := range ms {
			if m.Skipped && i != skipped {
				t.Fatalf("%s step %d skipped after applied steps", prec, m.Step)
			}
			if want := math.Ldexp(start, -skipped); start != 0 && m.LossScale != want {
				t.Fatalf("%s step %d: loss scale %g after %d skips, want %g", prec, m.Step, m.LossScale, skipped, want)
			}
			if m.Skipped {
				skipped++
			}
		}
		if limit := map[string]int{"fp16": 8, "fp16-scale1": 0}[prec]; start != 0 && skipped > limit {
			t.Errorf("%s: %d steps skipped, want at most %d", prec, skipped, limit)
		}
		if start != 0 {
			t.Logf("%s: %d steps skipped, then trained at loss scale %g", prec, skipped, ms[len(ms)-1].LossScale)
		}
	}
	if a, b := runs["fp16"][0].Loss, runs["fp16-scale1"][0].Loss; a != b {
		t.Errorf("first step: fp16 loss %.9g at scale 2^16, %.9g at scale 1", a, b)
	}
	mean := func(ms []Metrics) float64 {
		var s float64
		for _, m := range ms {
			s += m.Loss
		}
		return s / float64(len(ms))
	}
	ref := runs["fp32"]
	for _, prec := range []string{"bf16", "fp16"} {
		ms := runs[prec]
		d0 := math.Abs(ms[0].Loss-ref[0].Loss) / ref[0].Loss
		first, last := mean(ms[:5]), mean(ms[len(ms)-5:])
		t.Logf("%s: first step loss %.5f (fp32 %.5f, rel diff %.2g); mean loss first 5 %.4f, last 5 %.4f (fp32 %.4f -> %.4f)",
			prec, ms[0].Loss, ref[0].Loss, d0, first, last, mean(ref[:5]), mean(ref[len(ref)-5:]))
		if d0 == 0 {
			t.Errorf("%s: first step loss equals fp32's bit for bit: the 16-bit copy is not read", prec)
		}
		if tol := map[string]float64{"bf16": 2.0 / 256, "fp16": 2.0 / 2048}[prec]; d0 > tol { // twice the rounding unit
			t.Errorf("%s: first step loss %.5f is %.2g from fp32's %.5f (> %.g)", prec, ms[0].Loss, d0, ref[0].Loss, tol)
		}
		if !(last < 0.9*first) {
			t.Errorf("%s: loss did not fall: %.4f -> %.4f", prec, first, last)
		}
	}
}

// fp16Config is testConfig for an fp16 run of epochs of at most perEpoch
// steps (0: the data's), no periodic checkpoints and the given initial
// loss scale.
func fp16Config(t *testing.T, epochs, perEpoch int, lossScale string) *Config {
	t.Helper()
	return testConfig(t, func(s string) string {
		s = strings.Replace(s, `"max_epoch": 2, "steps_per_epoch": 3`, fmt.Sprintf(`"max_epoch": %d, "steps_per_epoch": %d`, epochs, perEpoch), 1)
		s = strings.Replace(s, `"checkpoint_every": 2`, `"checkpoint_every": 0`, 1)
		return strings.Replace(s, `"log_every": 1`, `"log_every": 1, "precision": "fp16", "loss_scale": `+lossScale, 1)
	})
}

// TestLossScaleOverflowBacksOff starts an fp16 run at loss scale 2^126,
// where the scaled gradients overflow fp32: steps are skipped, parameters
// and AdamW step counts untouched, the scale halving each time, until the
// gradients fit; from then on the steps apply at that scale and the loss
// falls.
func TestLossScaleOverflowBacksOff(t *testing.T) {
	cfg := fp16Config(t, 1, 0, "85070591730234615865843651857942052864") // 2^126
	be := cpu.New()
	defer be.Close()
	tok, err := tokenizer.LoadVocab(cfg.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	bt := NewBatcher(cfg, trainSet(t), tok, true)
	defer bt.Close()
	// A few batches, cycled: the same batches again show the loss fall.
	var batches []*Batch
	pos := dataset.Position{}
	for range 6 {
		b, next, err := bt.Next(pos)
		if err != nil {
			t.Fatal(err)
		}
		batches, pos = append(batches, b), next
	}
	tr, err := NewTrainer(cfg, be, blip.RandomInit{Seed: 1, Std: 0.02}, 1000, tok.Dec, tok.Enc, tok.Pad)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	params := tr.Model.Params.List()
	snapshot := func() [][]float32 {
		out := make([][]float32, len(params))
		for i, p := range params {
			out[i] = make([]float32, p.Numel())
			if err := p.Read(out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	w0 := snapshot()
	scale := math.Ldexp(1, 126)
	var skipped int
	for ; skipped < 126; skipped++ {
		m, err := tr.Step(batches[skipped%len(batches)])
		if err != nil {
			t.Fatal(err)
		}
		if m.LossScale != scale {
			t.Fatalf("step %d: loss scale %g, want %g", m.Step, m.LossScale, scale)
		}
		if !m.Skipped {
			break
		}
		if m.SkippedSteps != int64(skipped+1) {
			t.Fatalf("step %d: %d skipped steps counted, want %d", m.Step, m.SkippedSteps, skipped+1)
		}
		for i, w := range snapshot() {
			if !slices.Equal(w, w0[i]) {
				t.Fatalf("step %d was skipped but moved %s", m.Step, params[i].Name())
			}
		}
		scale /= 2
	}
	if skipped == 0 {
		t.Fatal("no step skipped at loss scale 2^126: the test forces no overflow")
	}
	if skipped == 126 {
		t.Fatal("every step skipped down to scale 1")
	}
	t.Logf("%d steps skipped; training at loss scale 2^%d", skipped, int(math.Log2(scale)))
	w1 := snapshot()
	moved := 0
	for i := range w0 {
		if !slices.Equal(w0[i], w1[i]) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the first step after the back-off moved no parameter")
	}
	if n := tr.opt.StepCount(tr.Model.Params.Get("text_proj.weight")); n != 1 {
		t.Fatalf("AdamW step count %d after %d skipped steps and one applied, want 1", n, skipped)
	}
	var losses []float64
	for i := range 5 * len(batches) {
		m, err := tr.Step(batches[(skipped+1+i)%len(batches)])
		if err != nil {
			t.Fatal(err)
		}
		if m.Skipped || m.LossScale != scale {
			t.Fatalf("step %d after the back-off: skipped %v at scale %g, want none at %g", m.Step, m.Skipped, m.LossScale, scale)
		}
		losses = append(losses, m.Loss)
	}
	n := len(batches)
	first, last := mean(losses[:n]), mean(losses[len(losses)-n:])
	t.Logf("loss over the %d batches: %.4f, four passes later %.4f", n, first, last)
	if !(last < 0.9*first) {
		t.Errorf("the loss did not fall after the back-off: %.4f -> %.4f", first, last)
	}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestLossScaleResume: an fp16 run forced to back off (loss scale 2^20)
// and interrupted while skipping and again after, then resumed, ends with
// the checkpoint and metrics of an uninterrupted run, bit for bit, which
// needs the scale, its good-step count and the skip count restored. A
// checkpoint without scaler state (written before loss scaling existed)
// resumes at the configured scale.
func TestLossScaleResume(t *testing.T) {
	const initScale = "1048576" // 2^20
	be := cpu.New()
	ds := trainSet(t)
	cfg := fp16Config(t, 3, 4, initScale)
	a := t.TempDir()
	if _, err := Run(cfg, be, ds, Options{Out: a}); err != nil {
		t.Fatal(err)
	}
	ma, err := ReadMetrics(filepath.Join(a, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Stop on the first skipped step and on the first applied one.
	firstApplied := slices.IndexFunc(ma, func(m Metrics) bool { return !m.Skipped })
	if !ma[0].Skipped || firstApplied < 1 || firstApplied >= len(ma)-1 {
		t.Fatalf("skipped flags %v: want skips first, then applied steps", skips(ma))
	}
	stops := []int64{1, int64(firstApplied) + 1}
	b := t.TempDir()
	for _, stop := range stops {
		if _, err := Run(cfg, be, ds, Options{Out: b, Resume: true, StopAfter: stop}); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("stop after %d: %v", stop, err)
		}
		if tb := checkpointTensors(t, b); tb["optim."+optim.KeyLossScale] == nil {
			t.Fatalf("the checkpoint after step %d holds no %s", stop, optim.KeyLossScale)
		}
	}
	if _, err := Run(cfg, be, ds, Options{Out: b, Resume: true}); err != nil {
		t.Fatal(err)
	}
	ta, tb := checkpointTensors(t, a), checkpointTensors(t, b)
	for n, x := range ta {
		if !bytes.Equal(x, tb[n]) {
			t.Errorf("tensor %s differs between the uninterrupted and the resumed run", n)
		}
	}
	mb, err := ReadMetrics(filepath.Join(b, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ma, mb) {
		t.Errorf("metrics differ:\n%+v\nresumed:\n%+v", ma, mb)
	}
	t.Logf("skipped %v, scales %g .. %g", skips(ma), ma[0].LossScale, ma[len(ma)-1].LossScale)

	// The checkpoint after step 1 without its scaler state.
	c := t.TempDir()
	if _, err := Run(cfg, be, ds, Options{Out: c, StopAfter: 1}); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	path := filepath.Join(CheckpointDir(c), stateTensors)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w := safetensors.NewWriter()
	for _, name := range f.Names() {
		if strings.HasPrefix(name, "optim.scaler.") {
			continue
		}
		info, _ := f.Info(name)
		if info.DType == safetensors.I64 {
			v, err := f.Int64(name)
			if err == nil {
				err = w.AddInt64(name, info.Shape, v)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		v, err := f.Float32(name)
		if err == nil {
			err = w.AddFloat32(name, info.Shape, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	var resumed []Metrics
	if _, err := Run(cfg, be, ds, Options{Out: c, Resume: true, StopAfter: 2, Progress: func(m Metrics, _ float64) { resumed = append(resumed, m) }}); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	if len(resumed) != 1 || resumed[0].LossScale != ma[0].LossScale || resumed[0].SkippedSteps > 1 {
		t.Errorf("resumed from a checkpoint without scaler state: %+v, want step 2 at the configured scale %g", resumed, ma[0].LossScale)
	}
}

func skips(ms []Metrics) []bool {
	out := make([]bool, len(ms))
	for i, m := range ms {
		out[i] = m.Skipped
	}
	return out
}

// TestLossScaleConfig: loss_scale is refused outside fp16 and when it is
// not a power of two in [1, 2^126], by name.
func TestLossScaleConfig(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{`"precision": "bf16", "loss_scale": 1024`, `loss_scale = 1024: applies to precision "fp16" only`},
		{`"loss_scale": 1024`, `loss_scale = 1024: applies to precision "fp16" only`},
		{`"precision": "fp16", "loss_scale": 1000`, "loss_scale = 1000: must be 0 (2^16) or a power of two in [1, 2^126]"},
		{`"precision": "fp16", "loss_scale": 0.25`, "loss_scale = 0.25"},
		{`"precision": "fp16", "loss_scale": 1.7e38`, "loss_scale = 1.7e+38"},
	} {
		dir := world(t)
		js := fmt.Sprintf(`{"model": %s, "vocab": %q, "batch_size": 4, "queue_size": 10, "max_length": 16, "init_lr": 1e-3, "workers": 2, %s}`,
			tinyModel(len(shapes.Vocabulary())), filepath.Join(dir, "vocab.txt"), c.set)
		if _, err := Parse([]byte(js), "pretrain.json"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.set, err, c.want)
		}
	}
	cfg := fp16Config(t, 1, 0, "4096")
	if sc := cfg.scalerConfig(); sc.InitScale != 4096 || sc.GrowthInterval != optim.DefaultScalerConfig().GrowthInterval {
		t.Errorf("scaler config %+v, want GradScaler's defaults from 4096", sc)
	}
}
