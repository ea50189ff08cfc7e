package demo

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"blip/blip/capfilt"
	"blip/data/shapes"
	"blip/gpu/cpu"
)

// capfiltMiniature is the experiment at a budget of well under a minute:
// a tiny world, a few steps per stage, both decodings.
func capfiltMiniature(out string) CapFiltOptions {
	o := CapFiltQuick()
	o.Demo.Out = out
	o.Demo.N, o.Demo.TestLimit = 200, 20
	o.Demo.Steps, o.Demo.BatchSize, o.Demo.WarmupSteps, o.Demo.QueueSize = 150, 8, 10, 16
	o.CaptionerSteps, o.FilterSteps = 30, 30
	// The threshold is calibrated on held-out human images (Threshold is
	// not used).
	o.CalibrationFraction = 0.25
	o.Beams = 2
	return o
}

// TestCapFiltExperimentMiniature runs the whole pipeline on a tiny world:
// it must write its report, account for every web caption in the filter's
// scores, score a synthetic caption for every web image, agree with
// capfilt's own counts and output file, and evaluate N, C, C_beam and the
// oracle on the same test images. The paper's claims are not asserted:
// at this size they are noise.
func TestCapFiltExperimentMiniature(t *testing.T) {
	start := time.Now()
	out := t.TempDir()
	o := capfiltMiniature(out)
	r, err := RunCapFilt(o, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1fs\n%s", time.Since(start).Seconds(), r.Table())

	if c := r.Calibration; c == nil || c.Positives != 5*int(math.Round(0.25*float64(r.HumanImages))) || c.Negatives < c.Positives/2 ||
		!(c.Kept >= 0 && c.Kept <= 1 && c.Removed >= 0 && c.Removed <= 1 && c.Threshold > 0 && c.Threshold < 1) {
		t.Errorf("calibration %+v: want the 5 true captions of each of the held-out quarter of %d human images, false ones, and rates in [0, 1]", c, r.HumanImages)
	}
	for _, f := range []string{"capfilt_report.json", "capfilt_report.md", "web/" + shapes.WebFile, "web/" + shapes.WebTruthFile,
		"captioner/hf/model.safetensors", "filter/hf/model.safetensors", "capfilt/nucleus.json", "capfilt/beam.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	var back CapFiltReport
	data, err := os.ReadFile(filepath.Join(out, "capfilt_report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Models) != len(r.Models) || len(back.CapFilt) != len(r.CapFilt) {
		t.Errorf("capfilt_report.json holds %d models and %d capfilt passes, want %d and %d", len(back.Models), len(back.CapFilt), len(r.Models), len(r.CapFilt))
	}

	if r.HumanImages+r.WebImages != r.TrainImages || r.HumanImages != 32 || r.TestImages != 20 {
		t.Errorf("split: %d human + %d web of %d train, %d test; want 32 + 128 of 160, 20 test", r.HumanImages, r.WebImages, r.TrainImages, r.TestImages)
	}
	if r.WebCaptions != r.WebImages*o.WebPerImage {
		t.Errorf("%d web captions for %d images", r.WebCaptions, r.WebImages)
	}
	if want := r.WebCaptions - int(0.4*float64(r.WebCaptions)+0.5) - int(0.2*float64(r.WebCaptions)+0.5); r.WebCorrect != want {
		t.Errorf("%d correct web captions, want %d", r.WebCorrect, want)
	}
	if len(r.CapFilt) != 2 || r.CapFilt[0].Name != "nucleus" || r.CapFilt[1].Name != "beam" {
		t.Fatalf("capfilt passes %+v, want nucleus and beam", r.CapFilt)
	}
	for _, s := range r.CapFilt {
		f := s.WebFilter
		web, syn, hum := s.Counts[capfilt.SourceWeb], s.Counts[capfilt.SourceSynthetic], s.Counts[capfilt.SourceHuman]
		if f.N != r.WebCaptions || web.Kept+web.Removed != r.WebCaptions {
			t.Errorf("%s: the filter report has %d web captions and capfilt %d kept + %d removed, want %d", s.Name, f.N, web.Kept, web.Removed, r.WebCaptions)
		}
		if web.Kept+syn.Kept == 0 || web.Removed+syn.Removed == 0 {
			t.Errorf("%s: the filter kept %d and removed %d web + synthetic captions: the miniature must exercise both", s.Name, web.Kept+syn.Kept, web.Removed+syn.Removed)
		}
		if r.Calibration == nil {
			t.Fatal("no calibration")
		}
		threshold := r.Calibration.Threshold
		swept := false
		for _, p := range s.Sweep {
			if p.Threshold == threshold {
				swept = true
				if p.Removed != f.Removed || p.Kept != f.Recall {
					t.Errorf("%s: the sweep at %g gives %v/%v, the filter report %v/%v", s.Name, p.Threshold, p.Removed, p.Kept, f.Removed, f.Recall)
				}
			}
		}
		if !swept {
			t.Errorf("%s: the sweep %+v misses the threshold %g", s.Name, s.Sweep, threshold)
		}
		if f.Kept != web.Kept {
			t.Errorf("%s: the filter report keeps %d web captions, capfilt %d", s.Name, f.Kept, web.Kept)
		}
		if s.Synthetic.N != r.WebImages*o.Samples || s.SyntheticFilter.N != s.Synthetic.N || syn.Kept+syn.Removed != s.Synthetic.N {
			t.Errorf("%s: %d synthetic captions scored (%d filtered, capfilt %d + %d), want one per web image (%d)", s.Name, s.Synthetic.N, s.SyntheticFilter.N, syn.Kept, syn.Removed, r.WebImages)
		}
		if s.SyntheticFilter.Kept != syn.Kept {
			t.Errorf("%s: %d synthetic captions kept by the journal's scores, capfilt %d", s.Name, s.SyntheticFilter.Kept, syn.Kept)
		}
		if hum.Kept != 5*r.HumanImages {
			t.Errorf("%s: %d human pairs, want %d", s.Name, hum.Kept, 5*r.HumanImages)
		}
		var es []capfilt.Entry
		data, err := os.ReadFile(s.Output)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &es); err != nil {
			t.Fatal(err)
		}
		if len(es) != web.Kept+syn.Kept+hum.Kept {
			t.Errorf("%s: %s holds %d pairs, capfilt kept %d", s.Name, s.Output, len(es), web.Kept+syn.Kept+hum.Kept)
		}
	}

	names := []string{"N", "C", "C_beam", "oracle"}
	if len(r.Models) != len(names) {
		t.Fatalf("%d models, want %v", len(r.Models), names)
	}
	for i, m := range r.Models {
		if m.Name != names[i] {
			t.Errorf("model %d is %s, want %s", i, m.Name, names[i])
		}
		if m.Subset.Images != r.TestImages || m.Subset.Caption.N != r.TestImages {
			t.Errorf("%s: evaluated on %d images (%d captions), want %d", m.Name, m.Subset.Images, m.Subset.Caption.N, r.TestImages)
		}
		if m.Loss.First == 0 || m.Loss.Last == 0 {
			t.Errorf("%s: no training losses", m.Name)
		}
		if _, err := os.Stat(filepath.Join(m.Dir, "hf", "retrieval", "model.safetensors")); err != nil {
			t.Error(err)
		}
	}
	n, c, cb, oracle := r.Models[0], r.Models[1], r.Models[2], r.Models[3]
	if want := r.WebCaptions + 5*r.HumanImages; n.Pairs != want || oracle.Pairs != want {
		t.Errorf("N and the oracle train on %d and %d pairs, want %d", n.Pairs, oracle.Pairs, want)
	}
	if want := float64(r.WebCorrect+5*r.HumanImages) / float64(n.Pairs); n.CorrectPairs != want || oracle.CorrectPairs != 1 {
		t.Errorf("correct pairs: N %.4f (want %.4f), oracle %.4f (want 1)", n.CorrectPairs, want, oracle.CorrectPairs)
	}
	for k, m := range []ModelScore{c, cb} {
		s := r.CapFilt[k]
		if want := s.Counts[capfilt.SourceWeb].Kept + s.Counts[capfilt.SourceSynthetic].Kept + 5*r.HumanImages; m.Pairs != want {
			t.Errorf("%s trains on %d pairs, capfilt kept %d", m.Name, m.Pairs, want)
		}
		if oracle.T2IR1 > 0 && m.OfOracle["t2i_r1"] != m.T2IR1/oracle.T2IR1 {
			t.Errorf("%s: of oracle %v, want %v", m.Name, m.OfOracle["t2i_r1"], m.T2IR1/oracle.T2IR1)
		}
	}
	if len(r.Goals) != 9 {
		t.Errorf("%d goals, want 9", len(r.Goals))
	}
}

// TestCapFiltBadOptions refuses impossible settings before any work.
func TestCapFiltBadOptions(t *testing.T) {
	for _, edit := range []func(*CapFiltOptions){
		func(o *CapFiltOptions) { o.HumanFraction = 0 },
		func(o *CapFiltOptions) { o.HumanFraction = 1 },
		func(o *CapFiltOptions) { o.Demo.MaxObjects = 2 },
		func(o *CapFiltOptions) { o.FilterSteps = 0 },
		func(o *CapFiltOptions) { o.Beams, o.Samples = 2, 3 },
		func(o *CapFiltOptions) { o.Demo.Out = "" },
	} {
		out := t.TempDir()
		o := capfiltMiniature(out)
		edit(&o)
		if _, err := RunCapFilt(o, cpu.New()); err == nil {
			t.Errorf("%+v: no error", o)
		}
		if o.Demo.Out != "" {
			if es, _ := os.ReadDir(out); len(es) != 0 {
				t.Errorf("refused options left %d entries in the output folder", len(es))
			}
		}
	}
}
