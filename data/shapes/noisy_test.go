package shapes

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

func TestWebCaptions(t *testing.T) {
	d := testDataset(t)
	train := d.Split(SplitTrain)
	opt := WebOptions{Replace: 0.4, Swap: 0.2, Seed: 5}
	web, err := WebCaptions(d.Config, train, opt)
	if err != nil {
		t.Fatal(err)
	}
	flat := FlatCaptionEntries(train)
	if len(web) != len(flat) {
		t.Fatalf("%d web captions for %d captions", len(web), len(flat))
	}
	kinds := map[string]int{}
	byImage := map[int]*Scene{}
	for i := range train {
		byImage[train[i].ImageID] = &train[i]
	}
	for i, w := range web {
		kinds[w.Kind]++
		if w.Image != flat[i].Image || w.Original != flat[i].Caption {
			t.Fatalf("entry %d out of order", i)
		}
		desc, err := ParseCaption(w.Caption)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if Matches(desc, byImage[w.ImageID]) != w.Correct || w.Correct != (w.Kind == WebClean) {
			t.Errorf("entry %d %q (%s): correct=%v", i, w.Caption, w.Kind, w.Correct)
		}
		if w.Kind == WebSwapped {
			// One attribute changed: same number of objects, one slot off
			// or a relation or position changed.
			sc := ScoreCaption(w.Caption, byImage[w.ImageID])
			if len(desc.Objects) != len(byImage[w.ImageID].Objects) || sc.Total()-sc.Correct() != 1 {
				t.Errorf("swapped %q -> %q: %d of %d slots right", w.Original, w.Caption, sc.Correct(), sc.Total())
			}
		}
	}
	m := float64(len(web))
	if got := float64(kinds[WebReplaced]) / m; math.Abs(got-0.4) > 1/m {
		t.Errorf("replaced fraction %v", got)
	}
	if got := float64(kinds[WebSwapped]) / m; math.Abs(got-0.2) > 1/m {
		t.Errorf("swapped fraction %v", got)
	}
	again, _ := WebCaptions(d.Config, train, opt)
	if !reflect.DeepEqual(web, again) {
		t.Error("web captions differ between runs")
	}
	opt.Seed++
	if other, _ := WebCaptions(d.Config, train, opt); reflect.DeepEqual(web, other) {
		t.Error("another seed gave the same web captions")
	}

	// A filter keeping exactly the correct ones is perfect; keeping all
	// has precision 0.4.
	keep, all := make([]bool, len(web)), make([]bool, len(web))
	for i, w := range web {
		keep[i], all[i] = w.Correct, true
	}
	if r, _ := EvaluateFilter(keep, web); r.Precision != 1 || r.Recall != 1 || r.Removed != 1 || r.Accuracy != 1 {
		t.Errorf("perfect filter %+v", r)
	}
	if r, _ := EvaluateFilter(all, web); math.Abs(r.Precision-float64(kinds[WebClean])/m) > 1e-12 || r.Recall != 1 || r.Removed != 0 {
		t.Errorf("keep-all filter %+v", r)
	}
	if _, err := EvaluateFilter(keep[:1], web); err == nil {
		t.Error("length mismatch accepted")
	}

	dir := t.TempDir()
	if err := WriteWeb(dir, web); err != nil {
		t.Fatal(err)
	}
	var pairs []map[string]any
	if err := readJSON(filepath.Join(dir, WebFile), &pairs); err != nil || len(pairs) != len(web) || len(pairs[0]) != 2 {
		t.Fatalf("web file: %v, %d entries, fields %v", err, len(pairs), pairs[0])
	}
}

func TestWebCaptionErrors(t *testing.T) {
	d := testDataset(t)
	for _, opt := range []WebOptions{{Replace: -0.1}, {Swap: 1.5}, {Replace: 0.7, Swap: 0.5}, {Replace: math.NaN()}} {
		_, err := WebCaptions(d.Config, d.Scenes, opt)
		var se *SettingError
		if !errors.As(err, &se) {
			t.Errorf("%+v: got %v", opt, err)
		}
	}
	if _, err := WebCaptions(d.Config, nil, WebOptions{Replace: 0.1}); err == nil {
		t.Error("no scenes accepted")
	}
	// A world of one repeated image has nothing to replace captions with.
	one := []Scene{pairScene, pairScene}
	one[0].Captions = []string{"a small red circle left of a large blue square"}
	one[1].Captions = one[0].Captions
	if _, err := WebCaptions(d.Config, one, WebOptions{Replace: 0.5}); err == nil {
		t.Error("replacing among identical images succeeded")
	}
}
