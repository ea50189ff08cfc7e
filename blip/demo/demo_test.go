package demo

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"blip/blip/pretrain"
	"blip/gpu/cpu"
)

// miniature is the quick demo at a smaller budget, for `make test`.
func miniature(out string) Options {
	o := Quick()
	o.Out, o.Steps, o.VQASteps = out, 700, 150
	return o
}

// TestMiniatureLearns runs the whole demo in miniature: every loss falls
// (ITC and ITM too: with a fast momentum encoder or BERT's 0.02 init they
// stayed at their uniform values), captions, retrieval and VQA beat their
// chance levels (VQA also the question-only prior), and every output is
// written. The output folder is relative, as `make demo` gives it (the
// run's configs resolve paths against their own folder).
func TestMiniatureLearns(t *testing.T) {
	start := time.Now()
	t.Chdir(t.TempDir())
	out := "demo-out"
	r, err := Run(miniature(out), cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1fs\n%s", time.Since(start).Seconds(), r.Table())
	l := r.Loss
	// 0.6365 is the entropy of ITM's 1:2 match prior: what ITM scores when
	// it ignores its input (where it stayed when ITC collapsed).
	if !(l.Last < 0.8*l.First) || !(l.LastLM < 0.8*l.FirstLM) || !(l.LastITA < 0.8*l.FirstITA) || !(l.LastITM < 0.6) {
		t.Errorf("losses did not fall: total %.3f -> %.3f, ita %.3f -> %.3f, itm %.3f -> %.3f, lm %.3f -> %.3f",
			l.First, l.Last, l.FirstITA, l.LastITA, l.FirstITM, l.LastITM, l.FirstLM, l.LastLM)
	}
	all := r.Subsets[0]
	acc, chance := all.Caption.Accuracy, all.Chance.Caption.Accuracy
	if !(acc > chance+0.2) {
		t.Errorf("caption attribute accuracy %.3f, chance %.3f: not well above it", acc, chance)
	}
	r1, r1Chance := all.Recall.TextToImage[0], all.Chance.Recall.TextToImage[0]
	if !(r1 > 4*r1Chance) {
		t.Errorf("text->image R@1 %.3f, chance %.3f: not well above it", r1, r1Chance)
	}
	if all.VQA == nil {
		t.Fatal("no VQA scores")
	}
	if v, c, p := all.VQA.Accuracy, all.ChanceVQA.Accuracy, all.PriorVQA.Accuracy; !(v > c+0.1 && v > p+0.05) {
		t.Errorf("VQA accuracy %.3f: chance %.3f, question-only prior %.3f: not well above both", v, c, p)
	}
	for _, f := range []string{"metrics.json", "metrics.jsonl", "loss.png", "report.html", "hf/captioning/model.safetensors", "hf/retrieval/model.safetensors", "vqa-finetune/hf/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	ms, err := pretrain.ReadMetrics(filepath.Join(out, "metrics.jsonl"))
	if err != nil || len(ms) != r.Steps {
		t.Errorf("metrics.jsonl: %d lines (%v), want %d", len(ms), err, r.Steps)
	}
}

// TestBadOptions refuses impossible settings before any work.
func TestBadOptions(t *testing.T) {
	for _, edit := range []func(*Options){
		func(o *Options) { o.Out = "" },
		func(o *Options) { o.Steps = 0 },
		func(o *Options) { o.Model.PatchSize = 7 },
		func(o *Options) { o.MaxObjects = 9 },
	} {
		o := miniature(t.TempDir())
		edit(&o)
		if _, err := Run(o, cpu.New()); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
