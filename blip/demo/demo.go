package demo

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"blip/blip/pretrain"
	"blip/data/shapes"
	"blip/gpu"
)

// Result is what a demo run measured; metrics.json holds it.
type Result struct {
	Options  Options            `json:"options"`
	Backend  string             `json:"backend"`
	Steps    int                `json:"steps"`
	Train    int                `json:"train_images"`
	Test     int                `json:"test_images"`
	Loss     LossSummary        `json:"loss"`
	Subsets  []Subset           `json:"subsets"`
	Examples []Example          `json:"examples"`
	Exports  map[string]string  `json:"exports"`
	Timing   map[string]float64 `json:"timing_seconds"`
	// VQASteps and VQALoss (mean of the first and last tenth of the steps)
	// describe the VQA fine-tuning stage.
	VQASteps int        `json:"vqa_steps"`
	VQALoss  [2]float64 `json:"vqa_loss"`
	// SamplesPerSec is the training throughput.
	SamplesPerSec float64 `json:"samples_per_sec"`
	// LeftOut says what the demo does not measure, and why.
	LeftOut []string `json:"left_out"`
	// Deviations lists where the demo's pretraining departs from BLIP's.
	Deviations []string `json:"deviations"`

	metrics []pretrain.Metrics
}

// LossSummary is the mean of each loss over the first and the last tenth
// of the steps.
type LossSummary struct {
	FirstITA, FirstITM, FirstLM, First float64
	LastITA, LastITM, LastLM, Last     float64
}

func summarize(ms []pretrain.Metrics) LossSummary {
	w := max(1, len(ms)/10)
	mean := func(xs []pretrain.Metrics, f func(pretrain.Metrics) float64) float64 {
		var s float64
		for _, m := range xs {
			s += f(m)
		}
		return s / float64(len(xs))
	}
	a, b := ms[:w], ms[len(ms)-w:]
	ita := func(m pretrain.Metrics) float64 { return m.ITA }
	itm := func(m pretrain.Metrics) float64 { return m.ITM }
	lm := func(m pretrain.Metrics) float64 { return m.LM }
	all := func(m pretrain.Metrics) float64 { return m.Loss }
	return LossSummary{
		FirstITA: mean(a, ita), FirstITM: mean(a, itm), FirstLM: mean(a, lm), First: mean(a, all),
		LastITA: mean(b, ita), LastITM: mean(b, itm), LastLM: mean(b, lm), Last: mean(b, all),
	}
}

// Run runs the demo on be and writes its outputs under o.Out.
func Run(o Options, be gpu.Backend) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	res := &Result{Options: o, Backend: be.Name(), Timing: map[string]float64{}}
	t0 := time.Now()
	lap := func(name string) {
		res.Timing[name] = time.Since(t0).Seconds()
		t0 = time.Now()
	}

	world := filepath.Join(o.Out, "world")
	wc := o.worldConfig()
	d, err := shapes.Generate(wc)
	if err != nil {
		return nil, err
	}
	if err := shapes.Write(world, d, shapes.WriteOptions{}); err != nil {
		return nil, err
	}
	trainScenes, testScenes := d.Split(shapes.SplitTrain), d.Split(shapes.SplitTest)
	if o.TestLimit > 0 && len(testScenes) > o.TestLimit {
		testScenes = testScenes[:o.TestLimit]
	}
	if len(trainScenes) < o.BatchSize || len(testScenes) == 0 {
		return nil, fmt.Errorf("demo: %d train and %d test images: too few for a batch of %d", len(trainScenes), len(testScenes), o.BatchSize)
	}
	res.Train, res.Test = len(trainScenes), len(testScenes)
	o.logf("world: %d images (%d train, %d test used) of %d px, 1..%d objects -> %s", wc.N, len(trainScenes), len(testScenes), wc.Size, wc.MaxObjects, world)
	lap("world")

	tr, err := train(&o, be, world, trainScenes)
	if err != nil {
		return nil, err
	}
	res.metrics, res.Steps, res.Exports, res.SamplesPerSec = tr.Metrics, len(tr.Metrics), tr.Exports, tr.PerSecond
	res.Loss = summarize(tr.Metrics)
	lap("pretrain")

	var trainQs []shapes.Question
	for _, s := range trainScenes {
		trainQs = append(trainQs, s.Questions...)
	}
	if o.VQASteps > 0 {
		vr, err := trainVQA(&o, be, world, trainScenes, tr.Exports["vqa"])
		if err != nil {
			return nil, err
		}
		res.Exports["vqa-finetuned"] = vr.Model
		res.VQASteps, res.VQALoss = vr.Steps, [2]float64{vr.First, vr.Last}
		lap("vqa")
	}

	o.logf("evaluate: captioning (beams %d, prompt %q), retrieval (ITC top %d re-ranked by ITM) and VQA on %d test images", o.Beams, o.Prompt, rerankK, len(testScenes))
	ev, err := evaluate(&o, be, world, wc, testScenes, res.Exports, trainQs)
	if err != nil {
		return nil, err
	}
	res.Subsets, res.Examples = ev.Subsets, ev.Examples
	if o.VQASteps == 0 {
		res.LeftOut = append(res.LeftOut, "VQA: no fine-tuning stage was run (vqa_steps 0); the vqa export is written but not scored")
	}
	res.Deviations = []string{
		"no training augmentation: BLIP's random crop and horizontal flip contradict the captions' positions (left/right); batches hold distinct images",
	}
	if o.Momentum != 0.995 || o.Alpha != 0.4 {
		res.Deviations = append(res.Deviations, fmt.Sprintf("momentum encoders at %g and distillation alpha %g (BLIP: 0.995, 0.4)", o.Momentum, o.Alpha))
	}
	res.Deviations = append(res.Deviations, fmt.Sprintf("fresh weights drawn with std %g and ViT position embeddings with std %g (BLIP starts from ImageNet ViT and BERT weights; BERT's init is 0.02)", o.InitStd, o.PositionStd))
	res.Deviations = append(res.Deviations, "gradients clipped to norm 1 (BLIP does not clip)")
	if o.Temp > 0 {
		res.Deviations = append(res.Deviations, fmt.Sprintf("ITC temperature held at %g (BLIP learns it): AdamW at lr %g moves it by its own size within ~100 steps and the contrastive loss diverged", o.Temp, o.LR))
	}
	lap("evaluate")

	if err := writeOutputs(o.Out, res, ev); err != nil {
		return nil, err
	}
	lap("report")
	return res, nil
}

// writeOutputs writes metrics.json, captions.jsonl, loss.png and
// report.html.
func writeOutputs(out string, res *Result, ev *evaluation) error {
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "metrics.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := pretrain.WriteLossPlot(out); err != nil {
		return err
	}
	return writeHTML(filepath.Join(out, "report.html"), res)
}
