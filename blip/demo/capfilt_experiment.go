package demo

// The CapFilt experiment (`blip experiment capfilt`): BLIP's section 3.3 /
// Table 1 in miniature on the shapes world. Train images are split into a
// small human-annotated set (true captions) and web images whose captions
// are made noisy (shapes.WebCaptions). Model N is pretrained on web +
// human; a captioner (LM) and a filter (ITC + ITM) are fine-tuned from N on
// the human set; CapFilt (blip/capfilt) captions the web images by nucleus
// sampling and filters the web and synthetic captions; model C is
// pretrained from scratch with the same recipe on the filtered web +
// filtered synthetic + human pairs, and an oracle on the true captions of
// the web images + human. Optionally the beam-search variant gives C_beam.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"blip/blip/capfilt"
	"blip/blip/finetune"
	"blip/data/dataset"
	"blip/data/shapes"
	"blip/gpu"
)

// CapFiltOptions are the experiment's settings.
type CapFiltOptions struct {
	// Demo is the world, the model and the pretraining recipe, the same
	// for N, C, C_beam and the oracle (Demo.Out is the experiment folder;
	// Demo.VQASteps is ignored: no VQA stage).
	Demo Options `json:"demo"`
	// HumanFraction of the train images form the human-annotated set
	// (all their true paraphrases); the rest are web images.
	HumanFraction float64 `json:"human_fraction"`
	// WebPerImage is how many captions each web image has (one of its
	// paraphrases each, before the noise), as a web image has its alt text.
	WebPerImage int `json:"web_captions_per_image"`
	// Web is the noise of the web captions.
	Web shapes.WebOptions `json:"web"`
	// Fine-tuning of the captioner (caption task) and of the filter
	// (retrieval task: ITC + ITM) from N on the human set.
	CaptionerSteps int     `json:"captioner_steps"`
	CaptionerLR    float64 `json:"captioner_lr"`
	FilterSteps    int     `json:"filter_steps"`
	FilterLR       float64 `json:"filter_lr"`
	// CapFilt: nucleus sampling with TopP, the filter's threshold on
	// p(match), synthetic captions per web image, and the prompt of the
	// captioner (fine-tuned and generating with it).
	TopP      float64 `json:"top_p"`
	Threshold float64 `json:"threshold"`
	// CalibrationFraction > 0 holds that share of the human-annotated
	// images out of the filter's fine-tuning and sets the threshold from
	// them instead of Threshold: their true captions against false ones
	// (captions of other images and one-attribute swaps), the threshold
	// keeping the most of both (capfilt.Calibrate). BLIP's 0.5 (ITM's
	// argmax) sits too high for a filter trained with two negatives per
	// positive: it kept 76% of the correct web captions.
	CalibrationFraction float64 `json:"calibration_fraction"`
	Samples             int     `json:"samples_per_image"`
	Prompt              string  `json:"prompt"`
	// Beams > 1 also runs the beam-search variant (model C_beam).
	Beams int `json:"beams"`
}

// CapFiltDefaults is the full experiment (about 20 minutes on two CPU
// cores): the demo's Quick world (3 shapes x 3 colours, one object per
// image) over 1200 images, with a model between Quick's and the demo's
// (ViT 2 x 128, text 2 x 128) pretrained for 800 steps of 24, the
// captioner and the filter fine-tuned for 300 and 600 steps (the filter
// on three quarters of the human-annotated images, the last quarter
// choosing its threshold), and the beam-search variant.
func CapFiltDefaults() CapFiltOptions {
	d := Quick()
	d.N = 1200
	d.Model = Model{ImageSize: 48, PatchSize: 16, VisionLayers: 2, VisionWidth: 128,
		TextLayers: 2, TextWidth: 128, Heads: 4, EmbedDim: 64}
	d.Steps, d.BatchSize, d.WarmupSteps, d.QueueSize = 800, 24, 60, 96
	d.TestLimit, d.ReportImages = 120, 0
	d.VQASteps = 0
	return CapFiltOptions{
		Demo: d, HumanFraction: 0.2, WebPerImage: 1, CalibrationFraction: 0.25,
		Web:            shapes.WebOptions{Replace: 0.4, Swap: 0.2, Seed: d.Seed},
		CaptionerSteps: 300, CaptionerLR: 5e-4, FilterSteps: 600, FilterLR: 5e-4,
		TopP: capfilt.DefaultTopP, Threshold: capfilt.DefaultThreshold, Samples: 1, Beams: 3,
	}
}

// CapFiltQuick is a run of about three minutes: the demo's Quick world
// and model (800 steps of 16), no beam-search variant.
func CapFiltQuick() CapFiltOptions {
	o := CapFiltDefaults()
	q := Quick()
	q.VQASteps, q.ReportImages = 0, 0
	o.Demo = q
	o.Web.Seed = q.Seed
	o.CaptionerSteps, o.FilterSteps, o.FilterLR = 150, 600, 1e-3
	o.Beams = 1
	return o
}

func (o *CapFiltOptions) validate() error {
	d := o.Demo
	d.VQASteps = 0
	if err := d.validate(); err != nil {
		return err
	}
	switch {
	case d.MaxObjects != 1:
		return fmt.Errorf("capfilt experiment: max objects %d: the experiment uses one object per image", d.MaxObjects)
	case !(o.HumanFraction > 0 && o.HumanFraction < 1):
		return fmt.Errorf("capfilt experiment: human fraction %v: must be in (0, 1)", o.HumanFraction)
	case !(o.CalibrationFraction >= 0 && o.CalibrationFraction < 1):
		return fmt.Errorf("capfilt experiment: calibration fraction %v: must be in [0, 1)", o.CalibrationFraction)
	case o.WebPerImage < 1:
		return fmt.Errorf("capfilt experiment: web captions per image %d: need at least 1", o.WebPerImage)
	case o.CaptionerSteps < 1 || o.FilterSteps < 1:
		return fmt.Errorf("capfilt experiment: captioner/filter steps %d/%d: need at least 1", o.CaptionerSteps, o.FilterSteps)
	case !(o.CaptionerLR > 0) || !(o.FilterLR > 0):
		return fmt.Errorf("capfilt experiment: fine-tuning rates %v/%v: must be > 0", o.CaptionerLR, o.FilterLR)
	case o.Samples < 1:
		return fmt.Errorf("capfilt experiment: samples per image %d: need at least 1", o.Samples)
	case o.Beams > 1 && o.Samples > o.Beams:
		return fmt.Errorf("capfilt experiment: beam search returns at most %d captions per image, %d asked", o.Beams, o.Samples)
	}
	return nil
}

// CapFiltReport is what the experiment measured; capfilt_report.json
// holds it.
type CapFiltReport struct {
	Options     CapFiltOptions `json:"options"`
	Backend     string         `json:"backend"`
	TrainImages int            `json:"train_images"`
	HumanImages int            `json:"human_images"`
	WebImages   int            `json:"web_images"`
	TestImages  int            `json:"test_images"`
	// WebCaptions and WebCorrect count the web captions and the correct
	// ones among them.
	WebCaptions int `json:"web_captions"`
	WebCorrect  int `json:"web_correct"`
	// Captioner and Filter are the fine-tuned folders and their losses.
	Captioner FinetuneSummary `json:"captioner"`
	Filter    FinetuneSummary `json:"filter"`
	// Calibration is the filter threshold chosen on the held-out human
	// images (nil: Options.Threshold was used).
	Calibration *capfilt.Calibration `json:"calibration,omitempty"`
	// CapFilt holds one entry per decoding: "nucleus", then "beam".
	CapFilt []CapFiltStage `json:"capfilt"`
	// Models: N, C, C_beam (when run), oracle.
	Models []ModelScore `json:"models"`
	Goals  []Goal       `json:"goals"`
	// Timing is the seconds of each stage; Wall the whole run.
	Timing     map[string]float64 `json:"timing_seconds"`
	Wall       float64            `json:"wall_seconds"`
	LeftOut    []string           `json:"left_out"`
	Deviations []string           `json:"deviations"`
}

// FinetuneSummary is one fine-tuning stage.
type FinetuneSummary struct {
	Model string     `json:"model"`
	Steps int        `json:"steps"`
	Loss  [2]float64 `json:"loss"` // mean of the first and last tenth of the steps
}

// CapFiltStage is one CapFilt pass over the web images.
type CapFiltStage struct {
	Decoding string `json:"decoding"` // "nucleus (top-p 0.9)" or "beam 3"
	Name     string `json:"name"`     // nucleus or beam
	Output   string `json:"output"`   // the capfilt annotation file
	// Counts is capfilt's summary: kept and removed pairs by source.
	Counts map[string]capfilt.Count `json:"counts"`
	// WebFilter scores the filter's keep/remove decisions on the web
	// captions against the truth (Removed: wrong ones removed; Recall:
	// correct ones kept).
	WebFilter shapes.FilterReport `json:"web_filter"`
	// Synthetic: attribute accuracy of every synthetic caption (all web
	// images, before the filter) against its image; SyntheticCorrect the
	// fraction stating exactly the image (shapes.Matches), and
	// SyntheticFilter the filter's decisions on them against that truth.
	Synthetic        shapes.CaptionReport `json:"synthetic"`
	SyntheticCorrect float64              `json:"synthetic_correct"`
	SyntheticFilter  shapes.FilterReport  `json:"synthetic_filter"`
	// KeptCorrect is the fraction of all kept web + synthetic pairs that
	// state their image exactly.
	KeptCorrect float64 `json:"kept_correct"`
	// Sweep is the web filter at other thresholds (from the same scores):
	// whether the filter separates right from wrong captions, apart from
	// where its threshold sits.
	Sweep []SweepPoint `json:"sweep"`
}

// SweepPoint is the web filter at one threshold.
type SweepPoint struct {
	Threshold float64 `json:"threshold"`
	Removed   float64 `json:"removed"` // wrong web captions removed
	Kept      float64 `json:"kept"`    // correct web captions kept
}

// sweepThresholds are the thresholds of CapFiltStage.Sweep.
var sweepThresholds = []float64{0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}

// ModelScore is one pretrained model's held-out evaluation.
type ModelScore struct {
	Name  string `json:"name"`
	Data  string `json:"data"`
	Pairs int    `json:"pairs"`
	// CorrectPairs is the fraction of its training pairs that state their
	// image exactly.
	CorrectPairs float64     `json:"correct_pairs"`
	Dir          string      `json:"dir"`
	Loss         LossSummary `json:"loss"`
	// Caption attribute accuracy and exact match of the generated test
	// captions; R@1 re-ranked by ITM and by ITC alone.
	CaptionAccuracy float64 `json:"caption_accuracy"`
	CaptionExact    float64 `json:"caption_exact"`
	T2IR1           float64 `json:"t2i_r1"`
	I2TR1           float64 `json:"i2t_r1"`
	T2IR1ITC        float64 `json:"t2i_r1_itc"`
	I2TR1ITC        float64 `json:"i2t_r1_itc"`
	// OfOracle is each score over the oracle's; GapClosed (score - N) /
	// (oracle - N) (C models only).
	OfOracle  map[string]float64 `json:"of_oracle,omitempty"`
	GapClosed map[string]float64 `json:"gap_closed,omitempty"`
	Subset    Subset             `json:"subset"`
}

// Goal is one of the targets with what was measured.
type Goal struct {
	Goal     string  `json:"goal"`
	Measured string  `json:"measured"`
	Met      bool    `json:"met"`
	Value    float64 `json:"value"`
}

// metricNames are the scores compared with the oracle.
var metricNames = []string{"caption_accuracy", "t2i_r1", "i2t_r1"}

func (m *ModelScore) metric(name string) float64 {
	switch name {
	case "caption_accuracy":
		return m.CaptionAccuracy
	case "t2i_r1":
		return m.T2IR1
	case "i2t_r1":
		return m.I2TR1
	}
	return math.NaN()
}

// webCaption is a web caption with the image it belongs to.
type webCaption struct {
	shapes.WebCaption
	scene int // index into the web scenes
}

// RunCapFilt runs the experiment on be and writes its outputs under
// o.Demo.Out: world/, web/ (the noisy captions and their truth), N/, C/,
// C_beam/, oracle/ (pretraining runs), captioner/, filter/ (fine-tuning
// runs), capfilt/ (CapFilt outputs, with every score in the kept journals)
// and capfilt_report.json / capfilt_report.md.
func RunCapFilt(o CapFiltOptions, be gpu.Backend) (*CapFiltReport, error) {
	o.Demo.VQASteps = 0
	if err := o.validate(); err != nil {
		return nil, err
	}
	d := &o.Demo
	root := d.Out
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &CapFiltReport{Options: o, Backend: be.Name(), Timing: map[string]float64{}}
	t0 := time.Now()
	lap := func(name string) {
		rep.Timing[name] = time.Since(t0).Seconds()
		t0 = time.Now()
	}

	// The world and its split.
	world := filepath.Join(root, "world")
	wc := d.worldConfig()
	ds, err := shapes.Generate(wc)
	if err != nil {
		return nil, err
	}
	if err := shapes.Write(world, ds, shapes.WriteOptions{}); err != nil {
		return nil, err
	}
	trainScenes, testScenes := ds.Split(shapes.SplitTrain), ds.Split(shapes.SplitTest)
	if d.TestLimit > 0 && len(testScenes) > d.TestLimit {
		testScenes = testScenes[:d.TestLimit]
	}
	nHuman := int(math.Round(o.HumanFraction * float64(len(trainScenes))))
	human, webScenes := trainScenes[:nHuman], trainScenes[nHuman:]
	if len(human) < d.BatchSize || len(webScenes) < d.BatchSize || len(testScenes) == 0 {
		return nil, fmt.Errorf("capfilt experiment: %d human, %d web and %d test images: too few for a batch of %d", len(human), len(webScenes), len(testScenes), d.BatchSize)
	}
	rep.TrainImages, rep.HumanImages, rep.WebImages, rep.TestImages = len(trainScenes), len(human), len(webScenes), len(testScenes)
	d.logf("world: %d images of %d px (%d train: %d human-annotated, %d web; %d test) -> %s", wc.N, wc.Size, len(trainScenes), len(human), len(webScenes), len(testScenes), world)

	// Web captions: WebPerImage of each web image's paraphrases, made
	// noisy.
	web, err := makeWeb(&o, wc, webScenes)
	if err != nil {
		return nil, err
	}
	truth := make([]shapes.WebCaption, len(web))
	for i, w := range web {
		truth[i] = w.WebCaption
		if w.Correct {
			rep.WebCorrect++
		}
	}
	rep.WebCaptions = len(web)
	if err := os.MkdirAll(filepath.Join(root, "web"), 0o755); err != nil {
		return nil, err
	}
	if err := shapes.WriteWeb(filepath.Join(root, "web"), truth); err != nil {
		return nil, err
	}
	d.logf("web: %d captions of %d images, %d correct (replace %g, swap %g)", len(web), len(webScenes), rep.WebCorrect, o.Web.Replace, o.Web.Swap)
	lap("world")

	// 1. Model N: noisy web + human.
	noisy := withCaptions(webScenes, func(i int) []string {
		var cs []string
		for _, w := range web {
			if w.scene == i {
				cs = append(cs, w.Caption)
			}
		}
		return cs
	})
	modelN, err := pretrainAndEvaluate(&o, be, world, wc, "N", "noisy web + human", append(noisy, human...), testScenes)
	if err != nil {
		return nil, err
	}
	lap("model N")

	// 2. Captioner and filter fine-tuned from N on the human set.
	pairs := humanPairs(world, human)
	if rep.Captioner, err = finetuneStage(&o, be, "caption", modelN.exports["captioning"], filepath.Join(root, "captioner"), pairs); err != nil {
		return nil, err
	}
	lap("captioner")
	fit, cal := human, []shapes.Scene(nil)
	if o.CalibrationFraction > 0 {
		n := int(math.Round(o.CalibrationFraction * float64(len(human))))
		fit, cal = human[:len(human)-n], human[len(human)-n:]
	}
	if rep.Filter, err = finetuneStage(&o, be, "retrieval", modelN.exports["retrieval"], filepath.Join(root, "filter"), humanPairs(world, fit)); err != nil {
		return nil, err
	}
	lap("filter")
	if len(cal) > 0 {
		c, err := calibrateFilter(&o, be, world, wc, rep.Captioner.Model, rep.Filter.Model, cal)
		if err != nil {
			return nil, err
		}
		rep.Calibration, o.Threshold = c, c.Threshold
		d.logf("filter threshold %.3f from %d held-out human images: keeps %.3f of %d true captions, removes %.3f of %d false ones",
			c.Threshold, len(cal), c.Kept, c.Positives, c.Removed, c.Negatives)
		lap("calibration")
	}

	// 3-4. CapFilt by nucleus sampling, then model C.
	decodings := []struct{ name, model string }{{"nucleus", "C"}}
	if o.Beams > 1 {
		decodings = append(decodings, struct{ name, model string }{"beam", "C_beam"})
	}
	var models []*trainedModel
	models = append(models, modelN)
	for _, dec := range decodings {
		st, filtered, err := capfiltStage(&o, be, world, rep.Captioner.Model, rep.Filter.Model, dec.name, web, webScenes, human)
		if err != nil {
			return nil, err
		}
		rep.CapFilt = append(rep.CapFilt, *st)
		lap("capfilt " + dec.name)
		m, err := pretrainAndEvaluate(&o, be, world, wc, dec.model, fmt.Sprintf("filtered web + filtered synthetic (%s) + human", dec.name), append(filtered, human...), testScenes)
		if err != nil {
			return nil, err
		}
		models = append(models, m)
		lap("model " + dec.model)
	}

	// 5. Oracle: the true captions of the web captions + human.
	clean := withCaptions(webScenes, func(i int) []string {
		var cs []string
		for _, w := range web {
			if w.scene == i {
				cs = append(cs, w.Original)
			}
		}
		return cs
	})
	oracle, err := pretrainAndEvaluate(&o, be, world, wc, "oracle", "true web captions + human", append(clean, human...), testScenes)
	if err != nil {
		return nil, err
	}
	models = append(models, oracle)
	lap("model oracle")

	for _, m := range models {
		rep.Models = append(rep.Models, m.score)
	}
	compareWithOracle(rep)
	rep.Goals = capfiltGoals(rep)
	rep.Deviations = capfiltDeviations(&o)
	rep.LeftOut = capfiltLeftOut(&o)
	rep.Wall = time.Since(start).Seconds()
	if err := writeCapFiltReport(root, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// makeWeb picks WebPerImage paraphrases of each web image (starting at a
// random one) and makes them noisy.
func makeWeb(o *CapFiltOptions, wc shapes.Config, scenes []shapes.Scene) ([]webCaption, error) {
	rng := rand.New(rand.NewPCG(uint64(o.Web.Seed), 0x3eb))
	base := withCaptions(scenes, func(i int) []string {
		cs := scenes[i].Captions
		k := min(o.WebPerImage, len(cs))
		off := rng.IntN(len(cs))
		out := make([]string, k)
		for j := range out {
			out[j] = cs[(off+j)%len(cs)]
		}
		return out
	})
	caps, err := shapes.WebCaptions(wc, base, o.Web)
	if err != nil {
		return nil, err
	}
	var out []webCaption
	k := 0
	for i := range base {
		for range base[i].Captions {
			if caps[k].Image != base[i].Image {
				return nil, fmt.Errorf("capfilt experiment: web caption %d is of %s, want %s", k, caps[k].Image, base[i].Image)
			}
			out = append(out, webCaption{WebCaption: caps[k], scene: i})
			k++
		}
	}
	return out, nil
}

// withCaptions copies scenes with the captions of scene i replaced by
// captions(i); the copies still name the world's images.
func withCaptions(scenes []shapes.Scene, captions func(i int) []string) []shapes.Scene {
	out := make([]shapes.Scene, len(scenes))
	for i := range scenes {
		out[i] = scenes[i]
		out[i].Captions = captions(i)
		out[i].Questions = nil
	}
	return out
}

// trainedModel is a pretrained and evaluated model.
type trainedModel struct {
	exports map[string]string
	score   ModelScore
}

// pretrainAndEvaluate pretrains a model from scratch on scenes (each
// caption a pair) with the demo recipe in root/name and evaluates it on
// the test scenes.
func pretrainAndEvaluate(o *CapFiltOptions, be gpu.Backend, world string, wc shapes.Config, name, data string, scenes []shapes.Scene, test []shapes.Scene) (*trainedModel, error) {
	d := o.Demo
	d.Out = filepath.Join(o.Demo.Out, name)
	if err := os.RemoveAll(d.Out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.Out, 0o755); err != nil {
		return nil, err
	}
	pairs, correct := 0, 0
	for i := range scenes {
		for _, c := range scenes[i].Captions {
			pairs++
			if captionCorrect(c, &scenes[i]) {
				correct++
			}
		}
	}
	d.logf("model %s: pretrain from scratch on %s: %d pairs (%.1f%% correct)", name, data, pairs, 100*ratio(correct, pairs))
	tr, err := train(&d, be, world, scenes)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	ev, err := evaluate(&d, be, world, wc, test, tr.Exports, nil)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	s := ev.Subsets[0]
	m := &trainedModel{exports: tr.Exports, score: ModelScore{
		Name: name, Data: data, Pairs: pairs, CorrectPairs: ratio(correct, pairs), Dir: d.Out, Loss: summarize(tr.Metrics),
		CaptionAccuracy: s.Caption.Accuracy, CaptionExact: s.Caption.ExactMatch,
		T2IR1: s.Recall.TextToImage[0], I2TR1: s.Recall.ImageToText[0],
		T2IR1ITC: s.RecallITC.TextToImage[0], I2TR1ITC: s.RecallITC.ImageToText[0],
		Subset: s,
	}}
	d.logf("model %s: caption accuracy %.3f, t->i R@1 %.3f, i->t R@1 %.3f (ITC only %.3f / %.3f)", name, m.score.CaptionAccuracy, m.score.T2IR1, m.score.I2TR1, m.score.T2IR1ITC, m.score.I2TR1ITC)
	js, err := json.MarshalIndent(m.score, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.Out, "eval.json"), append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// captionCorrect: the caption parses and states exactly the scene.
func captionCorrect(c string, s *shapes.Scene) bool {
	desc, err := shapes.ParseCaption(c)
	return err == nil && shapes.Matches(desc, s)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// humanPairs is the human-annotated set as fine-tuning data: every
// paraphrase a pair, the image id shared by an image's captions.
func humanPairs(world string, scenes []shapes.Scene) *dataset.Pairs {
	es := make([]dataset.Entry, len(scenes))
	for i, s := range scenes {
		es[i] = dataset.Entry{Image: s.Image, Path: filepath.Join(world, s.Image), Captions: append([]string(nil), s.Captions...),
			ImageID: fmt.Sprint(s.ImageID), Index: i}
	}
	return dataset.NewPairs(es)
}

// calibrateFilter scores the true captions of the held-out human scenes
// and false ones made from them (half replaced by captions of other
// images, half with one attribute swapped) with the filter, and picks the
// threshold that keeps the most of both.
func calibrateFilter(o *CapFiltOptions, be gpu.Backend, world string, wc shapes.Config, captioner, filter string, scenes []shapes.Scene) (*capfilt.Calibration, error) {
	d := &o.Demo
	false_, err := shapes.WebCaptions(wc, scenes, shapes.WebOptions{Replace: 0.5, Swap: 0.5, Seed: o.Web.Seed + 1})
	if err != nil {
		return nil, err
	}
	byImage := map[string][]string{}
	for _, w := range false_ {
		if !w.Correct {
			byImage[w.Image] = append(byImage[w.Image], w.Caption)
		}
	}
	paths := make([]string, 0, 2*len(scenes))
	var texts [][]string
	for _, s := range scenes {
		paths = append(paths, filepath.Join(world, s.Image))
		texts = append(texts, s.Captions)
	}
	for _, s := range scenes {
		paths = append(paths, filepath.Join(world, s.Image))
		texts = append(texts, byImage[s.Image])
	}
	ms, err := capfilt.OpenModels(be, captioner, filter)
	if err != nil {
		return nil, err
	}
	defer ms.Close()
	co := capfilt.DefaultOptions()
	co.MaxTextTokens, co.Batch = d.textLength(), 32
	scores, err := capfilt.ScoreCaptions(be, ms, paths, texts, co)
	if err != nil {
		return nil, err
	}
	var pos, neg []float32
	for i, sc := range scores {
		if i < len(scenes) {
			pos = append(pos, sc...)
		} else {
			neg = append(neg, sc...)
		}
	}
	c, err := capfilt.Calibrate(pos, neg)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// finetuneStage fine-tunes init on the human pairs: task caption (the
// captioner) or retrieval (the filter: ITC + ITM, the ITM rows starting
// with [CLS] as capfilt scores them).
func finetuneStage(o *CapFiltOptions, be gpu.Backend, task, init, out string, pairs *dataset.Pairs) (FinetuneSummary, error) {
	d := &o.Demo
	cfg := finetune.Defaults(task)
	steps, lr := o.CaptionerSteps, o.CaptionerLR
	if task == "retrieval" {
		steps, lr = o.FilterSteps, o.FilterLR
		cfg.QueueSize, cfg.Alpha, cfg.Momentum, cfg.ITMToken = d.QueueSize, d.Alpha, d.Momentum, "cls"
		if d.Temp > 0 {
			cfg.InitTemp, cfg.FixedTemp = d.Temp, d.Temp
		}
	} else {
		cfg.Prompt = o.Prompt
	}
	cfg.Init, cfg.BatchSize, cfg.InitLR, cfg.MinLR, cfg.WarmupSteps = init, d.BatchSize, lr, lr/10, d.WarmupSteps/2
	cfg.MaxLength = d.textLength()
	cfg.Augment, cfg.Dropout, cfg.Workers, cfg.MaxGradNorm, cfg.Seed = false, 0, 2, 1, uint64(d.Seed)
	epochSteps := pairs.Len() / cfg.BatchSize
	if epochSteps < 1 {
		return FinetuneSummary{}, fmt.Errorf("capfilt experiment: %d human pairs: too few for a batch of %d", pairs.Len(), cfg.BatchSize)
	}
	cfg.Epochs = (steps + epochSteps - 1) / epochSteps
	cfg.StepsPerEpoch = (steps + cfg.Epochs - 1) / cfg.Epochs
	if err := cfg.Validate(); err != nil {
		return FinetuneSummary{}, err
	}
	if err := os.RemoveAll(out); err != nil {
		return FinetuneSummary{}, err
	}
	role := map[string]string{"caption": "captioner (LM)", "retrieval": "filter (ITC + ITM)"}[task]
	d.logf("%s: fine-tune %s on %d human pairs: %d epochs of %d steps of %d, lr %g", role, init, pairs.Len(), cfg.Epochs, min(epochSteps, cfg.StepsPerEpoch), cfg.BatchSize, cfg.InitLR)
	var losses []float64
	last := time.Now()
	sum, err := finetune.Run(&cfg, be, pairs, finetune.Options{Out: out, Strict: true, Progress: func(m finetune.Metrics, sps float64) {
		losses = append(losses, m.Loss)
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			d.logf("  %s step %d  loss %.3f  %.0f samples/s", task, m.Step, m.Loss, sps)
		}
	}})
	if err != nil {
		return FinetuneSummary{}, fmt.Errorf("%s: %w", role, err)
	}
	w := max(1, len(losses)/10)
	mean := func(x []float64) float64 {
		var s float64
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	fs := FinetuneSummary{Model: sum.Model, Steps: len(losses), Loss: [2]float64{mean(losses[:w]), mean(losses[len(losses)-w:])}}
	d.logf("%s: loss %.3f -> %.3f over %d steps", role, fs.Loss[0], fs.Loss[1], fs.Steps)
	return fs, nil
}

// journalRecord is one image of a capfilt journal (OUT.partial.jsonl,
// kept with KeepJournal): its web and synthetic captions with every score.
type journalRecord struct {
	Index    int              `json:"i"`
	Image    string           `json:"image"`
	Failed   string           `json:"failed"`
	Captions []capfilt.Scored `json:"captions"`
}

// readJournal reads a capfilt journal's records by image index.
func readJournal(path string) (map[int]journalRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	out := map[int]journalRecord{}
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue // the settings header
		}
		var r journalRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, line, err)
		}
		out[r.Index] = r
	}
	return out, sc.Err()
}

// capfiltStage runs blip/capfilt over the web images with the fine-tuned
// captioner and filter, decoding by nucleus sampling or beam search, and
// scores the filter and the synthetic captions against the truth. It
// returns the web scenes with their kept web and synthetic captions (an
// image with none kept has no captions).
func capfiltStage(o *CapFiltOptions, be gpu.Backend, world, captioner, filter, name string, web []webCaption, webScenes, human []shapes.Scene) (*CapFiltStage, []shapes.Scene, error) {
	d := &o.Demo
	dir := filepath.Join(d.Out, "capfilt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	out := filepath.Join(dir, name+".json")
	for _, p := range []string{out, capfilt.JournalPath(out), capfilt.SummaryPath(out), capfilt.HTMLPath(out)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return nil, nil, err
		}
	}
	images := make([]capfilt.Image, len(webScenes))
	for i, s := range webScenes {
		images[i] = capfilt.Image{Index: i, Image: s.Image, Path: filepath.Join(world, s.Image)}
	}
	for _, w := range web {
		images[w.scene].Captions = append(images[w.scene].Captions, w.Caption)
	}
	var hum []capfilt.Entry
	for _, s := range human {
		for _, c := range s.Captions {
			hum = append(hum, capfilt.Entry{Image: s.Image, Caption: c, Source: capfilt.SourceHuman})
		}
	}
	co := capfilt.DefaultOptions()
	co.SamplesPerImage, co.TopP, co.Threshold, co.Prompt = o.Samples, o.TopP, o.Threshold, o.Prompt
	co.MaxLength = d.textLength() + max(0, len(strings.Fields(o.Prompt)))
	co.MinLength = 0
	co.MaxTextTokens = d.textLength()
	co.Batch, co.Seed, co.KeepJournal, co.HTMLImages = 32, uint64(d.Seed), true, 40
	st := &CapFiltStage{Name: name, Output: out, Decoding: fmt.Sprintf("nucleus sampling (top-p %g)", o.TopP)}
	if name == "beam" {
		co.Beams = o.Beams
		st.Decoding = fmt.Sprintf("beam search (%d beams)", o.Beams)
	}
	d.logf("capfilt %s: caption the %d web images by %s with %s, filter web and synthetic captions with %s (p(match) >= %g)", name, len(images), st.Decoding, captioner, filter, o.Threshold)
	ms, err := capfilt.OpenModels(be, captioner, filter)
	if err != nil {
		return nil, nil, err
	}
	defer ms.Close()
	sum, err := capfilt.Run(be, ms, images, hum, out, co)
	if err != nil {
		return nil, nil, err
	}
	st.Counts = sum.Counts
	if sum.ImagesFailed > 0 {
		return nil, nil, fmt.Errorf("capfilt %s: %d images failed", name, sum.ImagesFailed)
	}
	recs, err := readJournal(capfilt.JournalPath(out))
	if err != nil {
		return nil, nil, err
	}
	if len(recs) != len(images) {
		return nil, nil, fmt.Errorf("capfilt %s: the journal holds %d images, want %d", name, len(recs), len(images))
	}
	// Decisions, in the web captions' order (the journal lists an image's
	// web captions in the order given, then its synthetic ones).
	keep := func(s float32) bool { return float64(s) >= o.Threshold }
	var webKeep []bool
	var webScores []float32
	filtered := withCaptions(webScenes, func(int) []string { return nil })
	var synth []string
	var synthScenes []shapes.Scene
	var synthKeep []bool
	var synthTruth []shapes.WebCaption
	keptPairs, keptCorrect := 0, 0
	for i := range images {
		r := recs[i]
		var nWeb int
		for _, c := range r.Captions {
			k := keep(c.Score)
			switch c.Source {
			case capfilt.SourceWeb:
				if nWeb >= len(images[i].Captions) || images[i].Captions[nWeb] != c.Caption {
					return nil, nil, fmt.Errorf("capfilt %s: image %s: web caption %d is %q in the journal", name, r.Image, nWeb, c.Caption)
				}
				nWeb++
				webKeep = append(webKeep, k)
				webScores = append(webScores, c.Score)
			case capfilt.SourceSynthetic:
				synth = append(synth, c.Caption)
				synthScenes = append(synthScenes, webScenes[i])
				synthKeep = append(synthKeep, k)
				synthTruth = append(synthTruth, shapes.WebCaption{Image: r.Image, Caption: c.Caption, Correct: captionCorrect(c.Caption, &webScenes[i])})
			default:
				return nil, nil, fmt.Errorf("capfilt %s: unexpected source %q", name, c.Source)
			}
			if k {
				filtered[i].Captions = append(filtered[i].Captions, c.Caption)
				keptPairs++
				if captionCorrect(c.Caption, &webScenes[i]) {
					keptCorrect++
				}
			}
		}
		if nWeb != len(images[i].Captions) {
			return nil, nil, fmt.Errorf("capfilt %s: image %s: %d web captions in the journal, want %d", name, r.Image, nWeb, len(images[i].Captions))
		}
	}
	// The journal's decisions must be capfilt's: compare with its output.
	if err := checkOutput(out, filtered, hum); err != nil {
		return nil, nil, fmt.Errorf("capfilt %s: %w", name, err)
	}
	order := make([]shapes.WebCaption, len(web))
	k := 0
	for i := range images { // web captions grouped by image, as webKeep
		for _, w := range web {
			if w.scene == i {
				order[k] = w.WebCaption
				k++
			}
		}
	}
	if st.WebFilter, err = shapes.EvaluateFilter(webKeep, order); err != nil {
		return nil, nil, err
	}
	ths := sweepThresholds
	if !slices.Contains(ths, o.Threshold) {
		ths = append(slices.Clone(ths), o.Threshold)
		slices.Sort(ths)
	}
	for _, th := range ths {
		ks := make([]bool, len(webScores))
		for i, s := range webScores {
			ks[i] = float64(s) >= th
		}
		f, err := shapes.EvaluateFilter(ks, order)
		if err != nil {
			return nil, nil, err
		}
		st.Sweep = append(st.Sweep, SweepPoint{Threshold: th, Removed: f.Removed, Kept: f.Recall})
	}
	if st.Synthetic, err = shapes.EvaluateCaptions(synth, synthScenes); err != nil {
		return nil, nil, err
	}
	nc := 0
	for _, t := range synthTruth {
		if t.Correct {
			nc++
		}
	}
	st.SyntheticCorrect = ratio(nc, len(synthTruth))
	if st.SyntheticFilter, err = shapes.EvaluateFilter(synthKeep, synthTruth); err != nil {
		return nil, nil, err
	}
	st.KeptCorrect = ratio(keptCorrect, keptPairs)
	f := st.WebFilter
	d.logf("capfilt %s: web captions: %d of %d kept; wrong ones removed %.3f, correct ones kept %.3f, precision %.3f", name, f.Kept, f.N, f.Removed, f.Recall, f.Precision)
	d.logf("capfilt %s: synthetic captions: attribute accuracy %.3f, %.3f exactly right, %d of %d kept", name, st.Synthetic.Accuracy, st.SyntheticCorrect, st.SyntheticFilter.Kept, st.SyntheticFilter.N)
	return st, filtered, nil
}

// checkOutput compares capfilt's output file with the kept captions
// derived from the journal: the same (image, caption) pairs, in order,
// then the human pairs.
func checkOutput(out string, filtered []shapes.Scene, human []capfilt.Entry) error {
	data, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var es []capfilt.Entry
	if err := json.Unmarshal(data, &es); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	var want []capfilt.Entry
	for _, s := range filtered {
		for _, c := range s.Captions {
			want = append(want, capfilt.Entry{Image: s.Image, Caption: c})
		}
	}
	want = append(want, human...)
	if len(es) != len(want) {
		return fmt.Errorf("%s holds %d pairs, the journal's scores keep %d", out, len(es), len(want))
	}
	for i := range es {
		if es[i].Image != want[i].Image || es[i].Caption != want[i].Caption {
			return fmt.Errorf("%s: pair %d is (%s, %q), the journal's scores keep (%s, %q)", out, i, es[i].Image, es[i].Caption, want[i].Image, want[i].Caption)
		}
	}
	return nil
}

// compareWithOracle fills each C model's fraction of the oracle's scores
// and of the gap from N to the oracle.
func compareWithOracle(rep *CapFiltReport) {
	var n, oracle *ModelScore
	for i := range rep.Models {
		switch rep.Models[i].Name {
		case "N":
			n = &rep.Models[i]
		case "oracle":
			oracle = &rep.Models[i]
		}
	}
	if n == nil || oracle == nil {
		return
	}
	for i := range rep.Models {
		m := &rep.Models[i]
		if m.Name == "oracle" {
			continue
		}
		m.OfOracle = map[string]float64{}
		if m.Name != "N" {
			m.GapClosed = map[string]float64{}
		}
		for _, k := range metricNames {
			v, o, b := m.metric(k), oracle.metric(k), n.metric(k)
			if o > 0 {
				m.OfOracle[k] = v / o
			}
			if m.GapClosed != nil && o != b {
				m.GapClosed[k] = (v - b) / (o - b)
			}
		}
	}
}

func (r *CapFiltReport) model(name string) *ModelScore {
	for i := range r.Models {
		if r.Models[i].Name == name {
			return &r.Models[i]
		}
	}
	return nil
}

// capfiltGoals checks the targets.
func capfiltGoals(r *CapFiltReport) []Goal {
	var gs []Goal
	if len(r.CapFilt) > 0 {
		f := r.CapFilt[0].WebFilter
		gs = append(gs,
			Goal{Goal: "filter removes >= 90% of wrong web captions", Value: f.Removed, Met: f.Removed >= 0.9, Measured: fmt.Sprintf("%.1f%%", 100*f.Removed)},
			Goal{Goal: "filter keeps >= 90% of correct web captions", Value: f.Recall, Met: f.Recall >= 0.9, Measured: fmt.Sprintf("%.1f%%", 100*f.Recall)},
		)
		s := r.CapFilt[0].Synthetic.Accuracy
		gs = append(gs, Goal{Goal: "synthetic (nucleus) captions >= 90% attribute-correct", Value: s, Met: s >= 0.9, Measured: fmt.Sprintf("%.1f%%", 100*s)})
	}
	n, c, o := r.model("N"), r.model("C"), r.model("oracle")
	if n != nil && c != nil && o != nil {
		for _, k := range []struct{ name, label string }{{"t2i_r1", "text->image R@1"}, {"i2t_r1", "image->text R@1"}, {"caption_accuracy", "caption attribute accuracy"}} {
			gs = append(gs, Goal{Goal: "C beats N on " + k.label, Value: c.metric(k.name) - n.metric(k.name), Met: c.metric(k.name) > n.metric(k.name),
				Measured: fmt.Sprintf("C %.3f vs N %.3f", c.metric(k.name), n.metric(k.name))})
		}
		for _, k := range []struct{ name, label string }{{"t2i_r1", "text->image R@1"}, {"i2t_r1", "image->text R@1"}, {"caption_accuracy", "caption attribute accuracy"}} {
			v := c.OfOracle[k.name]
			gs = append(gs, Goal{Goal: "C recovers >= 90% of the oracle's " + k.label, Value: v, Met: v >= 0.9,
				Measured: fmt.Sprintf("%.1f%% (C %.3f, oracle %.3f)", 100*v, c.metric(k.name), o.metric(k.name))})
		}
	}
	return gs
}

func capfiltDeviations(o *CapFiltOptions) []string {
	d := &o.Demo
	ns, nc := worldSize(d)
	out := []string{
		fmt.Sprintf("scale: a synthetic shapes world (one object per image, %d images, %d shapes x %d colours) and a ViT of %d x %d with a text transformer of %d x %d pretrained from scratch for %d steps of %d, instead of 14M-129M web images and ViT-B/L from ImageNet",
			d.N, ns, nc, d.Model.VisionLayers, d.Model.VisionWidth, d.Model.TextLayers, d.Model.TextWidth, d.Steps, d.BatchSize),
		fmt.Sprintf("web noise is synthetic: %.0f%% of the web captions replaced by captions of other images, %.0f%% with one attribute swapped; %d caption(s) per web image", 100*o.Web.Replace, 100*o.Web.Swap, o.WebPerImage),
		fmt.Sprintf("the captioner and the filter are fine-tuned for %d / %d steps (lr %g / %g) on the human-annotated %.0f%% of the train images (BLIP: COCO, 5 epochs)", o.CaptionerSteps, o.FilterSteps, o.CaptionerLR, o.FilterLR, 100*o.HumanFraction),
		"the filter's ITM rows start with [CLS] (fine-tuned with itm_token cls, as blip/capfilt scores them); pretraining's ITM used [ENC]",
		"C is pretrained from scratch with the same recipe and number of steps as N (BLIP also re-pretrains from scratch on the bootstrapped data); the demo recipe decays the learning rate by 0.9 per epoch of the model's own pairs, so a model with fewer pairs (shorter epochs) ends at a somewhat lower rate",
		"no training augmentation in pretraining or fine-tuning (random crops and flips contradict the captions' positions)",
	}
	if o.Prompt == "" {
		out = append(out, "the captioner is fine-tuned and decodes without BLIP's prompt \"a picture of \" (the demo pretrains without one)")
	}
	if o.CalibrationFraction > 0 {
		out = append(out, fmt.Sprintf("the filter's threshold is calibrated on the %.0f%% of the human-annotated images held out of its fine-tuning (their true captions against false ones), not BLIP's fixed 0.5 (ITM's argmax)", 100*o.CalibrationFraction))
	}
	return out
}

func capfiltLeftOut(o *CapFiltOptions) []string {
	var out []string
	if o.Beams <= 1 {
		out = append(out, "the beam-search variant of CapFilt (model C_beam) was not run")
	}
	out = append(out,
		"downstream fine-tuning of N and C (BLIP's Table 1 reports fine-tuned COCO/Flickr retrieval and captioning): N and C are compared zero-shot on the held-out split of the same world",
		"one seed: no spread over seeds is measured; differences of a few points may be noise",
		"the world has no VQA or NLVR stage here",
	)
	return out
}

// worldSize is the number of shapes and colours of the world.
func worldSize(d *Options) (int, int) {
	s, c := len(d.Shapes), len(d.Colors)
	if s == 0 {
		s = len(shapes.AllShapes())
	}
	if c == 0 {
		c = len(shapes.AllColors())
	}
	return s, c
}

// Table renders the experiment's results.
func (r *CapFiltReport) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CapFilt on the shapes world: %d train images (%d human-annotated, %d web with %d captions, %d correct), %d test images\n\n",
		r.TrainImages, r.HumanImages, r.WebImages, r.WebCaptions, r.WebCorrect, r.TestImages)
	fmt.Fprintf(&b, "captioner fine-tune: loss %.3f -> %.3f (%d steps); filter fine-tune: loss %.3f -> %.3f (%d steps)\n",
		r.Captioner.Loss[0], r.Captioner.Loss[1], r.Captioner.Steps, r.Filter.Loss[0], r.Filter.Loss[1], r.Filter.Steps)
	if c := r.Calibration; c != nil {
		fmt.Fprintf(&b, "filter threshold %.3f, calibrated on held-out human images: keeps %.3f of %d true captions, removes %.3f of %d false ones\n\n",
			c.Threshold, c.Kept, c.Positives, c.Removed, c.Negatives)
	} else {
		fmt.Fprintf(&b, "filter threshold %g\n\n", r.Options.Threshold)
	}
	fmt.Fprintf(&b, "%-8s | %-28s | %9s | %9s | %9s | %9s | %-28s | %9s | %9s\n", "capfilt", "decoding", "wrong web", "right web", "web kept", "synth acc", "synthetic exact / kept", "kept pairs", "kept ok")
	fmt.Fprintf(&b, "%-8s | %-28s | %9s | %9s | %9s | %9s | %-28s | %9s | %9s\n", "", "", "removed", "kept", "precision", "(attr)", "", "", "")
	b.WriteString(strings.Repeat("-", 150) + "\n")
	for _, s := range r.CapFilt {
		f := s.WebFilter
		fmt.Fprintf(&b, "%-8s | %-28s | %9.3f | %9.3f | %9.3f | %9.3f | %-28s | %9d | %9.3f\n", s.Name, s.Decoding, f.Removed, f.Recall, f.Precision, s.Synthetic.Accuracy,
			fmt.Sprintf("%.3f / %d of %d", s.SyntheticCorrect, s.SyntheticFilter.Kept, s.SyntheticFilter.N), s.Counts[capfilt.SourceWeb].Kept+s.Counts[capfilt.SourceSynthetic].Kept, s.KeptCorrect)
	}
	for _, s := range r.CapFilt {
		fmt.Fprintf(&b, "%s filter at other thresholds (wrong removed / right kept):", s.Name)
		for _, p := range s.Sweep {
			fmt.Fprintf(&b, "  %.3g: %.2f/%.2f", p.Threshold, p.Removed, p.Kept)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-7s | %-52s | %6s | %7s | %8s | %8s | %8s | %8s | %8s | %-22s\n", "model", "pretraining data", "pairs", "correct", "cap acc", "t->i R@1", "i->t R@1", "t->i ITC", "i->t ITC", "of oracle (cap/t2i/i2t)")
	b.WriteString(strings.Repeat("-", 165) + "\n")
	for _, m := range r.Models {
		of := "-"
		if m.OfOracle != nil {
			of = fmt.Sprintf("%.2f / %.2f / %.2f", m.OfOracle["caption_accuracy"], m.OfOracle["t2i_r1"], m.OfOracle["i2t_r1"])
		}
		fmt.Fprintf(&b, "%-7s | %-52s | %6d | %7.3f | %8.3f | %8.3f | %8.3f | %8.3f | %8.3f | %-22s\n", m.Name, m.Data, m.Pairs, m.CorrectPairs, m.CaptionAccuracy, m.T2IR1, m.I2TR1, m.T2IR1ITC, m.I2TR1ITC, of)
	}
	if len(r.Models) > 0 {
		c := r.Models[0].Subset.Chance
		fmt.Fprintf(&b, "%-7s | %-52s | %6s | %7s | %8.3f | %8.3f | %8.3f | %8s | %8s |\n", "chance", "", "", "", c.Caption.Accuracy, c.Recall.TextToImage[0], c.Recall.ImageToText[0], "", "")
	}
	b.WriteString("\ngoals:\n")
	for _, g := range r.Goals {
		mark := "MISSED"
		if g.Met {
			mark = "met"
		}
		fmt.Fprintf(&b, "  [%-6s] %-55s %s\n", mark, g.Goal, g.Measured)
	}
	return b.String()
}

// writeCapFiltReport writes capfilt_report.json and capfilt_report.md.
func writeCapFiltReport(root string, r *CapFiltReport) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "capfilt_report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# CapFilt on the shapes world\n\n")
	b.WriteString("BLIP section 3.3 / Table 1 in miniature: model N is pretrained on noisy web + human captions; a captioner and a filter fine-tuned from N on the human set bootstrap the web captions (CapFilt); model C is pretrained from scratch on the filtered web + filtered synthetic + human captions, the oracle on the true captions.\n\n")
	fmt.Fprintf(&b, "Backend %s, wall %.0f s.\n\n```\n%s```\n\n", r.Backend, r.Wall, r.Table())
	b.WriteString("Timing (seconds): ")
	var parts []string
	for _, k := range []string{"world", "model N", "captioner", "filter", "capfilt nucleus", "model C", "capfilt beam", "model C_beam", "model oracle"} {
		if v, ok := r.Timing[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
		}
	}
	b.WriteString(strings.Join(parts, ", ") + ".\n\n## Departures from BLIP\n\n")
	for _, s := range r.Deviations {
		b.WriteString("- " + s + "\n")
	}
	b.WriteString("\n## Left out\n\n")
	for _, s := range r.LeftOut {
		b.WriteString("- " + s + "\n")
	}
	return os.WriteFile(filepath.Join(root, "capfilt_report.md"), []byte(b.String()), 0o644)
}
