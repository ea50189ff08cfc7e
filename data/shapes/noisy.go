package shapes

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
)

// WebOptions sets the noise of the "web" caption variant, BLIP's noisy
// web image-text pairs that CapFilt cleans.
type WebOptions struct {
	// Replace is the fraction of captions replaced by a caption of another
	// image that does not describe this one (e.g. 0.4).
	Replace float64 `json:"replace"`
	// Swap is the fraction of captions with one attribute (a size, colour,
	// shape, position or relation) changed to another value (e.g. 0.2).
	Swap float64 `json:"swap"`
	// Seed chooses which captions are changed and how.
	Seed int64 `json:"seed"`
}

// Kinds of web captions.
const (
	WebClean    = "clean"
	WebReplaced = "replaced"
	WebSwapped  = "swapped"
)

// WebCaption is one noisy image-caption pair with its ground truth.
type WebCaption struct {
	Image    string `json:"image"`
	ImageID  int    `json:"image_id"`
	Caption  string `json:"caption"`
	Correct  bool   `json:"correct"`  // the caption Matches the image
	Kind     string `json:"kind"`     // clean, replaced or swapped
	Original string `json:"original"` // the generated caption it stands for
}

// WebCaptions makes the noisy variant of the scenes' captions, one entry
// per caption in FlatCaptionEntries order: exactly round(Replace*M)
// captions replaced and round(Swap*M) swapped, M the number of captions,
// chosen at random. Every changed caption is checked to be false of its
// image, every other one is true.
func WebCaptions(c Config, scenes []Scene, opt WebOptions) ([]WebCaption, error) {
	for _, f := range []struct {
		name string
		v    float64
	}{{"web-replace", opt.Replace}, {"web-swap", opt.Swap}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return nil, settingErr(f.name, "fraction %v: must be between 0 and 1", f.v)
		}
	}
	if opt.Replace+opt.Swap > 1+1e-9 {
		return nil, settingErr("web-swap", "replace %v + swap %v exceeds 1", opt.Replace, opt.Swap)
	}
	flat := FlatCaptionEntries(scenes)
	m := len(flat)
	if m == 0 {
		return nil, settingErr("n", "no captions to make noisy")
	}
	sceneOf := make([]int, 0, m)
	for i := range scenes {
		for range scenes[i].Captions {
			sceneOf = append(sceneOf, i)
		}
	}
	nRep := int(math.Round(opt.Replace * float64(m)))
	nSwap := min(int(math.Round(opt.Swap*float64(m))), m-nRep)
	r := newRNG(opt.Seed, 0, streamNoisy)
	kind := make([]string, m)
	for i := range kind {
		kind[i] = WebClean
	}
	for k, i := range r.perm(m) {
		switch {
		case k < nRep:
			kind[i] = WebReplaced
		case k < nRep+nSwap:
			kind[i] = WebSwapped
		}
	}
	descs := make([]Description, len(scenes))
	for i := range scenes {
		descs[i] = scenes[i].Description()
	}
	out := make([]WebCaption, m)
	for i, e := range flat {
		s := &scenes[sceneOf[i]]
		w := WebCaption{Image: e.Image, ImageID: e.ImageID, Caption: e.Caption, Kind: kind[i], Original: e.Caption}
		var err error
		switch kind[i] {
		case WebReplaced:
			w.Caption, err = replaceCaption(r, flat, sceneOf, descs, s)
		case WebSwapped:
			w.Caption, err = swapAttribute(&c, r, e.Caption, s)
		}
		if err != nil {
			return nil, err
		}
		d, perr := ParseCaption(w.Caption)
		w.Correct = perr == nil && Matches(d, s)
		if w.Correct != (kind[i] == WebClean) {
			return nil, fmt.Errorf("shapes: web caption %d %q of image %d: kind %s but correct=%v", i, w.Caption, e.ImageID, kind[i], w.Correct)
		}
		out[i] = w
	}
	return out, nil
}

// replaceCaption picks the caption of another image that is false of s.
func replaceCaption(r *rng, flat []FlatCaptionEntry, sceneOf []int, descs []Description, s *Scene) (string, error) {
	m := len(flat)
	// Random tries first, then a scan, for worlds where nearly every image
	// looks the same.
	for k := 0; k < 64+m; k++ {
		j := k - 64
		if k < 64 {
			j = r.intn(m)
		}
		if !Matches(descs[sceneOf[j]], s) {
			return flat[j].Caption, nil
		}
	}
	return "", fmt.Errorf("shapes: web captions: every caption describes image %d, none can replace its captions", s.ImageID)
}

// swapAttribute changes one attribute word (or position or relation
// phrase) of a generated caption so that it becomes false of s. It prefers
// changes that keep the objects' names distinct.
func swapAttribute(c *Config, r *rng, caption string, s *Scene) (string, error) {
	p, err := parseCaption(caption)
	if err != nil {
		return "", fmt.Errorf("shapes: web captions: %w", err)
	}
	type slot struct {
		start, end int
		choices    []string
	}
	var slots []slot
	others := func(all []string, cur string) []string {
		var o []string
		for _, x := range all {
			if x != cur {
				o = append(o, x)
			}
		}
		return o
	}
	strs := func(xs ...[]string) []string {
		var o []string
		for _, x := range xs {
			o = append(o, x...)
		}
		return o
	}
	var sizes, colors, shapes []string
	for _, x := range allSizes {
		sizes = append(sizes, string(x))
	}
	for _, x := range c.colors() {
		colors = append(colors, string(x))
	}
	for _, x := range c.shapes() {
		shapes = append(shapes, string(x))
	}
	for _, o := range p.objs {
		if o.size >= 0 {
			slots = append(slots, slot{o.size, o.size + 1, others(sizes, p.words[o.size])})
		}
		if o.color >= 0 {
			slots = append(slots, slot{o.color, o.color + 1, others(colors, p.words[o.color])})
		}
		if o.shape >= 0 {
			slots = append(slots, slot{o.shape, o.shape + 1, others(shapes, p.words[o.shape])})
		}
	}
	if p.pos[0] >= 0 {
		var ph []string
		for _, x := range allPositions {
			if x != p.desc.Objects[0].Position {
				ph = strs(ph, positionPhrases[x])
			}
		}
		slots = append(slots, slot{p.pos[0], p.pos[1], ph})
	}
	for k, span := range p.rels {
		var ph []string
		for _, x := range allRels {
			if x != p.desc.Relations[k].Rel {
				ph = strs(ph, relationPhrases[x])
			}
		}
		slots = append(slots, slot{span[0], span[1], ph})
	}
	fallback := ""
	for try := 0; try < 64; try++ {
		sl := pick(r, slots)
		if len(sl.choices) == 0 {
			continue
		}
		words := append(append(append([]string{}, p.words[:sl.start]...), pick(r, sl.choices)), p.words[sl.end:]...)
		out := strings.Join(words, " ")
		d, err := ParseCaption(out)
		if err != nil || Matches(d, s) {
			continue
		}
		if distinctNames(d) {
			return out, nil
		}
		if fallback == "" {
			fallback = out
		}
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", fmt.Errorf("shapes: web captions: no attribute of %q can be swapped (too few shapes or colours?)", caption)
}

func distinctNames(d Description) bool {
	seen := map[string]bool{}
	for _, o := range d.Objects {
		if seen[o.Name()] {
			return false
		}
		seen[o.Name()] = true
	}
	return true
}

// Web annotation file names.
const (
	WebFile      = "web_train.json"       // [{"image", "caption"}], BLIP's pretraining format
	WebTruthFile = "web_train_truth.json" // every WebCaption, with its ground truth
)

// WriteWeb writes web captions to dir: the noisy pairs alone in BLIP's
// pretraining format (WebFile), and the same pairs with which are correct
// (WebTruthFile), kept apart so that training never reads the truth.
func WriteWeb(dir string, caps []WebCaption) error {
	type pair struct {
		Image   string `json:"image"`
		Caption string `json:"caption"`
	}
	pairs := make([]pair, len(caps))
	for i, w := range caps {
		pairs[i] = pair{w.Image, w.Caption}
	}
	if caps == nil {
		caps = []WebCaption{}
	}
	if err := writeJSON(filepath.Join(dir, WebFile), pairs); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, WebTruthFile), caps)
}

// FilterReport scores a caption filter (CapFilt's) against the truth.
type FilterReport struct {
	N         int     `json:"n"`
	Kept      int     `json:"kept"`
	Precision float64 `json:"precision"` // correct among kept
	Recall    float64 `json:"recall"`    // kept among correct
	Removed   float64 `json:"removed"`   // removed among incorrect
	Accuracy  float64 `json:"accuracy"`  // keep/remove decisions right
}

// EvaluateFilter compares keep[i] (the filter keeps caption i) with
// truth[i].Correct.
func EvaluateFilter(keep []bool, truth []WebCaption) (FilterReport, error) {
	if len(keep) != len(truth) {
		return FilterReport{}, fmt.Errorf("shapes: filter: %d decisions for %d captions", len(keep), len(truth))
	}
	rep := FilterReport{N: len(keep)}
	var keptCorrect, correct, wrong, removedWrong int
	for i, k := range keep {
		c := truth[i].Correct
		if k {
			rep.Kept++
		}
		if c {
			correct++
			if k {
				keptCorrect++
			}
		} else {
			wrong++
			if !k {
				removedWrong++
			}
		}
	}
	rep.Precision = ratio(keptCorrect, rep.Kept)
	rep.Recall = ratio(keptCorrect, correct)
	rep.Removed = ratio(removedWrong, wrong)
	rep.Accuracy = ratio(keptCorrect+removedWrong, rep.N)
	return rep, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
