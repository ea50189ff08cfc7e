package eval

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// DefaultTemplate is the prompt zero-shot classification fills with each
// label.
const DefaultTemplate = "a picture of a {}"

// DefaultTemperature divides the cosines before the softmax: BLIP's ITC
// temperature at initialisation (HF retrieval folders do not store the
// learned one).
const DefaultTemperature = 0.07

// FillTemplate puts label in place of every "{}" of template, or after it
// (separated by a space) when it has none.
func FillTemplate(template, label string) string {
	if strings.Contains(template, "{}") {
		return strings.ReplaceAll(template, "{}", label)
	}
	if template == "" {
		return label
	}
	return strings.TrimRight(template, " ") + " " + label
}

// LabelScore is one label's score for an image.
type LabelScore struct {
	Label  string  `json:"label"`
	Index  int     `json:"index"`
	Prob   float64 `json:"prob"`
	Cosine float64 `json:"cosine"`
}

// ClassifyOptions configure Classify; zero values take the defaults.
type ClassifyOptions struct {
	Template    string
	Temperature float64
	Batch       int
	Progress    Progress
}

// Classify is zero-shot classification through ITC (as LAVIS offers for
// BLIP feature extractors): each label fills the template, the ITC cosine
// of each image's embedding with each filled template's embedding is
// computed, and softmax(cosine / temperature) over the labels gives the
// probabilities. The result lists every image's labels, most probable
// first (ties: label order).
func Classify(env *Env, paths, labels []string, opt ClassifyOptions) ([][]LabelScore, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("eval: classify: no labels")
	}
	if opt.Template == "" {
		opt.Template = DefaultTemplate
	}
	if opt.Temperature <= 0 {
		opt.Temperature = DefaultTemperature
	}
	if opt.Batch <= 0 {
		opt.Batch = 16
	}
	m := env.Model
	ids := make([][]int32, len(labels))
	for i, l := range labels {
		if strings.TrimSpace(l) == "" {
			return nil, fmt.Errorf("eval: classify: label %d is empty", i+1)
		}
		ids[i] = env.Encode(FillTemplate(opt.Template, l), 0)
	}
	txt, err := m.TextEmbeddings(env.Backend, ids)
	if err != nil {
		return nil, fmt.Errorf("eval: classify: %w", err)
	}
	d := m.Config.ImageTextHiddenSize
	out := make([][]LabelScore, 0, len(paths))
	for start := 0; start < len(paths); start += opt.Batch {
		batch := paths[start:min(start+opt.Batch, len(paths))]
		pixels, err := env.LoadPixels(batch)
		if err != nil {
			return nil, err
		}
		img, err := m.ImageEmbeddings(env.Backend, pixels, len(batch))
		if err != nil {
			return nil, fmt.Errorf("eval: classify: %w", err)
		}
		for b := range batch {
			cos := make([]float64, len(labels))
			for l := range labels {
				s := 0.0
				for k := range d {
					s += float64(img[b*d+k]) * float64(txt[l*d+k])
				}
				cos[l] = s
			}
			out = append(out, rankLabels(labels, cos, opt.Temperature))
		}
		opt.Progress.report("images", start+len(batch), len(paths))
	}
	return out, nil
}

// rankLabels turns cosines into softmax(cos / temperature) probabilities,
// most probable first (ties: label order).
func rankLabels(labels []string, cos []float64, temperature float64) []LabelScore {
	mx := math.Inf(-1)
	for _, c := range cos {
		mx = max(mx, c/temperature)
	}
	sum := 0.0
	res := make([]LabelScore, len(labels))
	for i, c := range cos {
		e := math.Exp(c/temperature - mx)
		res[i] = LabelScore{Label: labels[i], Index: i, Prob: e, Cosine: c}
		sum += e
	}
	for i := range res {
		res[i].Prob /= sum
	}
	sort.SliceStable(res, func(a, b int) bool { return res[a].Cosine > res[b].Cosine })
	return res
}
