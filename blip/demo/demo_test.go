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
	o.Out, o.Steps = out, 500
	return o
}

// TestMiniatureLearns runs the whole demo in miniature: the losses fall,
// the captions and the retrieval beat their chance levels, and every
// output is written.
func TestMiniatureLearns(t *testing.T) {
	start := time.Now()
	out := t.TempDir()
	r, err := Run(miniature(out), cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1fs\n%s", time.Since(start).Seconds(), r.Table())
	l := r.Loss
	if !(l.Last < 0.8*l.First) || !(l.LastLM < 0.8*l.FirstLM) {
		t.Errorf("losses did not fall: total %.3f -> %.3f, lm %.3f -> %.3f", l.First, l.Last, l.FirstLM, l.LastLM)
	}
	all := r.Subsets[0]
	acc, chance := all.Caption.Accuracy, all.Chance.Caption.Accuracy
	r5, r5Chance := all.Recall.TextToImage[1], all.Chance.Recall.TextToImage[1]
	if !(acc > chance+0.1) && !(r5 > 2*r5Chance) {
		t.Errorf("caption attribute accuracy %.3f (chance %.3f) and text->image R@5 %.3f (chance %.3f): neither well above chance", acc, chance, r5, r5Chance)
	}
	for _, f := range []string{"metrics.json", "metrics.jsonl", "loss.png", "report.html", "hf/captioning/model.safetensors", "hf/retrieval/model.safetensors"} {
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
