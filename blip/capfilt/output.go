package capfilt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"

	"blip/blip"
)

// Count is kept and removed pairs of one source.
type Count struct {
	Kept    int `json:"kept"`
	Removed int `json:"removed"`
}

// Failure is an image that could not be read.
type Failure struct {
	Index int    `json:"index"`
	Image string `json:"image"`
	Error string `json:"error"`
}

// Summary is OUT.summary.json.
type Summary struct {
	Threshold    float64          `json:"threshold"`
	Images       int              `json:"images"`        // images of this output (its shard)
	ImagesFailed int              `json:"images_failed"` // of those, unreadable
	Counts       map[string]Count `json:"counts"`        // by source: web, synthetic, human
	Failed       []Failure        `json:"failed"`
	Settings     []any            `json:"settings"` // one per merged output
	Shards       []string         `json:"shards"`
}

// finish writes out, its summary and its sample page from the records.
func finish(recs []record, human []Entry, out string, st settings, o *Options) (*Summary, error) {
	sum := &Summary{Threshold: o.Threshold, Images: len(recs), Counts: map[string]Count{
		SourceWeb: {}, SourceSynthetic: {}, SourceHuman: {Kept: len(human)},
	}, Failed: []Failure{}, Settings: []any{st}, Shards: []string{st.Shard}}
	for _, r := range recs {
		if r.Failed != "" {
			sum.ImagesFailed++
			sum.Failed = append(sum.Failed, Failure{Index: r.Index, Image: r.Image, Error: r.Failed})
		}
		for _, c := range r.Captions {
			n := sum.Counts[c.Source]
			if float64(c.Score) >= o.Threshold {
				n.Kept++
			} else {
				n.Removed++
			}
			sum.Counts[c.Source] = n
		}
	}
	entries := append(kept(recs, o.Threshold), human...)
	data, err := marshalEntries(entries)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(out, data); err != nil {
		return nil, err
	}
	if err := writeSummary(SummaryPath(out), sum); err != nil {
		return nil, err
	}
	page := samplePage(recs[:min(len(recs), max(0, o.HTMLImages))], o.Threshold, filepath.Dir(out))
	if err := writeAtomic(HTMLPath(out), []byte(page)); err != nil {
		return nil, err
	}
	return sum, nil
}

func writeSummary(path string, sum *Summary) error {
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'))
}

// writeAtomic writes a synced temporary sibling and renames it onto path,
// so path is either the old file or the complete new one.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("capfilt: %w", err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp")
	if err := blip.WriteFileSync(tmp, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("capfilt: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("capfilt: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// samplePage is the paper's Figure-4-like view: each image with its web and
// synthetic captions, kept ones green and removed ones red, with scores.
// Images are linked by a path relative to the page (or a data URI when no
// relative path exists).
func samplePage(recs []record, threshold float64, pageDir string) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>blip capfilt sample</title>
<style>
body{font-family:sans-serif;margin:1em}
.item{display:flex;gap:1em;margin:0 0 1em 0;border-bottom:1px solid #ddd;padding-bottom:1em}
.item img{width:192px;height:auto;object-fit:contain}
.kept{color:#127a12}.removed{color:#b01818;text-decoration:line-through}
.src{font-size:80%;color:#555}
</style></head><body>
`)
	fmt.Fprintf(&b, "<h1>CapFilt sample (threshold %g)</h1>\n<p><span class=\"kept\">kept</span> / <span class=\"removed\">removed</span>; p(match) from the filter's ITM head.</p>\n", threshold)
	for _, r := range recs {
		b.WriteString("<div class=\"item\">")
		fmt.Fprintf(&b, "<img src=\"%s\" alt=\"%s\">", html.EscapeString(imageSrc(r.Path, r.Image, pageDir)), html.EscapeString(r.Image))
		b.WriteString("<div>")
		fmt.Fprintf(&b, "<div class=\"src\">%d: %s</div>", r.Index, html.EscapeString(r.Image))
		if r.Failed != "" {
			fmt.Fprintf(&b, "<div class=\"removed\">could not read the image: %s</div>", html.EscapeString(r.Failed))
		}
		for _, c := range r.Captions {
			cls := "removed"
			if float64(c.Score) >= threshold {
				cls = "kept"
			}
			fmt.Fprintf(&b, "<div class=\"%s\"><span class=\"src\">%s</span> %s <b>%.3f</b></div>", cls, c.Source, html.EscapeString(c.Caption), c.Score)
		}
		b.WriteString("</div></div>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// imageSrc links an image from the page: relative when possible, else a
// data URI of the file, else the path as given.
func imageSrc(path, image, pageDir string) string {
	if path == "" {
		path = image
	}
	ap, err1 := filepath.Abs(path)
	ad, err2 := filepath.Abs(pageDir)
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(ad, ap); err == nil {
			return filepath.ToSlash(rel)
		}
	}
	if data, err := os.ReadFile(path); err == nil && len(data) < 4<<20 {
		mime := "image/jpeg"
		switch strings.ToLower(filepath.Ext(path)) {
		case ".png":
			mime = "image/png"
		case ".gif":
			mime = "image/gif"
		}
		return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
	}
	return filepath.ToSlash(path)
}

// Merge concatenates shard outputs (in the order given) into out and sums
// their summaries into out's summary. Human pairs are only in shard 0's
// output, so the result holds each pair once. The thresholds must agree.
func Merge(inputs []string, out string) (*Summary, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("capfilt: merge: no inputs")
	}
	var all []Entry
	sum := &Summary{Counts: map[string]Count{}, Failed: []Failure{}}
	for i, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			return nil, fmt.Errorf("capfilt: merge: %w", err)
		}
		var es []Entry
		if err := json.Unmarshal(data, &es); err != nil {
			return nil, fmt.Errorf("capfilt: merge: %s: %v", in, err)
		}
		all = append(all, es...)
		sdata, err := os.ReadFile(SummaryPath(in))
		if err != nil {
			return nil, fmt.Errorf("capfilt: merge: %s needs its summary: %w", in, err)
		}
		var s Summary
		if err := json.Unmarshal(sdata, &s); err != nil {
			return nil, fmt.Errorf("capfilt: merge: %s: %v", SummaryPath(in), err)
		}
		if i == 0 {
			sum.Threshold = s.Threshold
		} else if s.Threshold != sum.Threshold {
			return nil, fmt.Errorf("capfilt: merge: %s used threshold %v, %s used %v", inputs[0], sum.Threshold, in, s.Threshold)
		}
		sum.Images += s.Images
		sum.ImagesFailed += s.ImagesFailed
		for k, c := range s.Counts {
			t := sum.Counts[k]
			t.Kept += c.Kept
			t.Removed += c.Removed
			sum.Counts[k] = t
		}
		sum.Failed = append(sum.Failed, s.Failed...)
		sum.Settings = append(sum.Settings, s.Settings...)
		sum.Shards = append(sum.Shards, s.Shards...)
	}
	seen := map[string]bool{}
	for _, s := range sum.Shards {
		if seen[s] {
			return nil, fmt.Errorf("capfilt: merge: shard %s given twice", s)
		}
		seen[s] = true
	}
	data, err := marshalEntries(all)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(out, data); err != nil {
		return nil, err
	}
	if err := writeSummary(SummaryPath(out), sum); err != nil {
		return nil, err
	}
	return sum, nil
}
