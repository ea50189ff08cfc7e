package demo

import (
	"fmt"
	"html/template"
	"math"
	"os"
	"strings"

	"blip/data/shapes"
)

// row is one metric of the table: its value and chance level in a subset.
type row struct {
	name  string
	value func(Subset) float64
	// chance is nil where no chance level applies.
	chance func(Subset) float64
}

func recallAt(k int, t2i bool) func(Subset) float64 {
	return func(s Subset) float64 {
		r := s.Recall
		if t2i {
			return r.TextToImage[k]
		}
		return r.ImageToText[k]
	}
}

func chanceAt(k int, t2i bool) func(Subset) float64 {
	return func(s Subset) float64 {
		r := s.Chance.Recall
		if t2i {
			return r.TextToImage[k]
		}
		return r.ImageToText[k]
	}
}

func tableRows() []row {
	rows := []row{
		{"caption attribute accuracy", func(s Subset) float64 { return s.Caption.Accuracy }, func(s Subset) float64 { return s.Chance.Caption.Accuracy }},
		{"caption exact match", func(s Subset) float64 { return s.Caption.ExactMatch }, func(s Subset) float64 { return s.Chance.Caption.ExactMatch }},
		{"caption parse rate", func(s Subset) float64 { return s.Caption.ParseRate }, nil},
		{"caption BLEU-4", func(s Subset) float64 { return s.BLEU4 }, func(s Subset) float64 { return s.ChanceBLEU4 }},
		{"caption CIDEr", func(s Subset) float64 { return s.CIDEr }, func(s Subset) float64 { return s.ChanceCIDEr }},
	}
	for i, k := range Ks {
		rows = append(rows, row{fmt.Sprintf("text->image R@%d", k), recallAt(i, true), chanceAt(i, true)})
	}
	for i, k := range Ks {
		rows = append(rows, row{fmt.Sprintf("image->text R@%d", k), recallAt(i, false), chanceAt(i, false)})
	}
	itc := func(t2i bool) func(Subset) float64 {
		return func(s Subset) float64 {
			if t2i {
				return s.RecallITC.TextToImage[0]
			}
			return s.RecallITC.ImageToText[0]
		}
	}
	rows = append(rows, row{"text->image R@1, ITC only", itc(true), chanceAt(0, true)},
		row{"image->text R@1, ITC only", itc(false), chanceAt(0, false)})
	vqa := func(f func(Subset) *shapes.VQAReport) func(Subset) float64 {
		return func(s Subset) float64 {
			if r := f(s); r != nil {
				return r.Accuracy
			}
			return math.NaN()
		}
	}
	rows = append(rows,
		row{"VQA accuracy", vqa(func(s Subset) *shapes.VQAReport { return s.VQA }), vqa(func(s Subset) *shapes.VQAReport { return s.ChanceVQA })},
		row{"VQA question-only prior", vqa(func(s Subset) *shapes.VQAReport { return s.PriorVQA }), nil})
	return rows
}

// Table renders the metrics table: each subset's value next to its chance
// level.
func (r *Result) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s", "metric")
	for _, s := range r.Subsets {
		fmt.Fprintf(&b, " | %-17s", fmt.Sprintf("%s (%d img)", s.Name, s.Images))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-28s", "")
	for range r.Subsets {
		fmt.Fprintf(&b, " | %7s  %8s", "value", "chance")
	}
	b.WriteString("\n" + strings.Repeat("-", 28+20*len(r.Subsets)) + "\n")
	for _, rw := range tableRows() {
		fmt.Fprintf(&b, "%-28s", rw.name)
		for _, s := range r.Subsets {
			ch := "     -"
			if rw.chance != nil {
				ch = fmt.Sprintf("%8.3f", rw.chance(s))
			}
			v := rw.value(s)
			if math.IsNaN(v) {
				fmt.Fprintf(&b, " | %7s  %8s", "-", "-")
				continue
			}
			fmt.Fprintf(&b, " | %7.3f  %8s", v, ch)
		}
		b.WriteString("\n")
	}
	l := r.Loss
	fmt.Fprintf(&b, "\nloss (mean of first / last 10%% of %d steps): total %.3f -> %.3f, ita %.3f -> %.3f, itm %.3f -> %.3f, lm %.3f -> %.3f\n",
		r.Steps, l.First, l.Last, l.FirstITA, l.LastITA, l.FirstITM, l.LastITM, l.FirstLM, l.LastLM)
	return b.String()
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(x float64) string { return fmt.Sprintf("%.3f", x) },
	"f32": func(x float32) string { return fmt.Sprintf("%.3f", x) },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>blip demo: shapes world</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
img.s { width: 96px; height: 96px; image-rendering: pixelated; }
img.t { width: 48px; height: 48px; image-rendering: pixelated; }
.hit { color: #080; } .miss { color: #a00; }
pre { background: #f6f6f6; padding: 1em; }
</style></head><body>
<h1>blip demo: pretraining from scratch on the shapes world</h1>
<p>Backend {{.R.Backend}}; {{.R.Train}} train images, {{.R.Test}} test images; {{.R.Steps}} steps of batch {{.R.Options.BatchSize}}
({{printf "%.0f" .R.SamplesPerSec}} samples/s); model: ViT {{.R.Options.Model.VisionLayers}} layers x {{.R.Options.Model.VisionWidth}},
patch {{.R.Options.Model.PatchSize}} at {{.R.Options.Model.ImageSize}} px; text {{.R.Options.Model.TextLayers}} layers x {{.R.Options.Model.TextWidth}}.
Captions: {{if eq .R.Options.Beams 1}}greedy{{else}}beam {{.R.Options.Beams}}{{end}}{{if .R.Options.Prompt}}, prompt "{{.R.Options.Prompt}}"{{end}}.
Retrieval: the ITC top {{.K}} re-ranked by ITM (match logit + cosine), as BLIP evaluates; an image with the same ground-truth attributes counts as a hit.</p>
<h2>Metrics</h2>
<pre>{{.Table}}</pre>
<h2>Losses</h2>
<img src="loss.png" alt="loss curves">
<h2>Test images</h2>
<table><tr><th>image</th><th>generated caption</th><th>ground truth (one paraphrase)</th><th>top texts (image&rarr;text)</th><th>top images for its first caption</th></tr>
{{range .R.Examples}}<tr>
<td><img class="s" src="{{.Image}}"></td>
<td class="{{if .Exact}}hit{{else}}miss{{end}}">{{.Caption}}<br><small>attribute accuracy {{pct .Accuracy}}{{if .Exact}}, exact{{end}}</small></td>
<td>{{.Truth}}</td>
<td>{{range .TopTexts}}<div class="{{if .Hit}}hit{{else}}miss{{end}}">{{f32 .Score}} {{.Text}}</div>{{end}}</td>
<td>{{range .TopImages}}<img class="t" src="{{.Image}}" title="{{f32 .Score}}" style="border: 2px solid {{if .Hit}}#080{{else}}#a00{{end}}"> {{end}}</td>
</tr>{{end}}
</table>
<h2>Departures from BLIP's pretraining</h2>
<ul>{{range .R.Deviations}}<li>{{.}}</li>{{end}}</ul>
<h2>Left out</h2>
<ul>{{range .R.LeftOut}}<li>{{.}}</li>{{end}}</ul>
</body></html>
`))

func writeHTML(path string, r *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := reportTmpl.Execute(f, map[string]any{"R": r, "Table": r.Table(), "K": rerankK}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
