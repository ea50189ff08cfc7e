package capfilt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"blip/blip"
	"blip/data/dataset"
	"blip/data/preprocess"
	"blip/data/tokenizer"
	"blip/gpu/cpu"
)

var (
	tiny      = filepath.Join("..", "..", "testdata", "hf-blip-tiny")
	capDir    = filepath.Join(tiny, "tiny-captioning")
	filDir    = filepath.Join(tiny, "tiny-retrieval")
	imagesDir = filepath.Join(tiny, "images")
)

// webJSON is a web annotation file over the four tiny test images (one with
// two web captions) and the root its image fields are relative to.
func webJSON(t *testing.T, dir string, extra ...map[string]any) (string, string) {
	t.Helper()
	root, err := filepath.Abs(imagesDir)
	if err != nil {
		t.Fatal(err)
	}
	es := []map[string]any{
		{"image": "astronaut.png", "caption": "an astronaut in a space suit with a flag"},
		{"image": "chelsea.png", "caption": []string{"a cat sitting", "a red bus on the street"}},
		{"image": "coffee.png", "caption": "a cup of coffee on a table"},
		{"image": "rocket.jpg", "caption": "a rocket on the launch pad"},
	}
	es = append(es, extra...)
	return writeJSON(t, filepath.Join(dir, "web.json"), es), root
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTiny(t *testing.T) (*cpu.Backend, *Models) {
	t.Helper()
	be := cpu.New()
	ms, err := OpenModels(be, capDir, filDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close(); be.Close() })
	return be, ms
}

func readOut(t *testing.T, path string) []Entry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	if err := json.Unmarshal(data, &es); err != nil {
		t.Fatal(err)
	}
	return es
}

func readSummary(t *testing.T, out string) Summary {
	t.Helper()
	data, err := os.ReadFile(SummaryPath(out))
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func testOptions() Options {
	o := DefaultOptions()
	o.SamplesPerImage = 2
	o.Batch = 2
	o.Seed = 7
	return o
}

// pairKey identifies an output pair independently of order.
func pairKey(e Entry) string { return e.Image + "\x00" + e.Source + "\x00" + e.Caption }

// The kept set is exactly the pairs whose filter probability, computed
// independently with blip's MatchTexts (one image at a time), reaches the
// threshold, for thresholds that split the set; the summary counts agree.
func TestCapfiltKeptMatchesMatchTexts(t *testing.T) {
	be, ms := openTiny(t)
	dir := t.TempDir()
	web, root := webJSON(t, dir)
	images, err := ReadWeb(web, root)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Threshold = 0 // everything kept: the run's captions and scores
	out := filepath.Join(dir, "all.json")
	if _, err := Run(be, ms, images, nil, out, o); err != nil {
		t.Fatal(err)
	}
	all := readOut(t, out)
	if want := 5 + 4*o.SamplesPerImage; len(all) != want {
		t.Fatalf("%d pairs at threshold 0, want %d", len(all), want)
	}
	// Independent scores.
	tok, err := tokenizer.LoadDir(filDir)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := preprocess.FromConfigDir(filDir)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]float64{}
	var ps []float64
	for _, e := range all {
		img, err := preprocess.Load(filepath.Join(root, e.Image))
		if err != nil {
			t.Fatal(err)
		}
		px, err := proc.Pixels(img)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for _, id := range tok.Encode(tokenizer.PreCaption(e.Caption, DefaultMaxWords)) {
			ids = append(ids, int32(id))
		}
		res, err := ms.Filter.MatchTexts(be, px, 1, [][]int32{ids})
		if err != nil {
			t.Fatal(err)
		}
		got := float64(res[0][0].ITMScore)
		if e.Score == nil || math.Abs(float64(*e.Score)-got) > 1e-5 {
			t.Fatalf("%q on %s: run's score %v, MatchTexts %v", e.Caption, e.Image, e.Score, got)
		}
		p[pairKey(e)] = got
		ps = append(ps, got)
	}
	// Thresholds in the middle of the widest gaps between scores.
	sort.Float64s(ps)
	type gap struct{ w, mid float64 }
	var gaps []gap
	for i := 1; i < len(ps); i++ {
		gaps = append(gaps, gap{ps[i] - ps[i-1], (ps[i] + ps[i-1]) / 2})
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].w > gaps[j].w })
	if len(gaps) < 3 || gaps[2].w < 1e-4 {
		t.Fatalf("scores do not spread enough to split: %v", ps)
	}
	for _, g := range gaps[:3] {
		o.Threshold = g.mid
		out := filepath.Join(dir, fmt.Sprintf("t%.4f.json", g.mid))
		sum, err := Run(be, ms, images, nil, out, o)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		kept := map[string]int{}
		for k, v := range p {
			if v >= g.mid {
				want[k] = true
				kept[strings.Split(k, "\x00")[1]]++
			}
		}
		got := readOut(t, out)
		if len(got) != len(want) || len(got) == 0 || len(got) == len(all) {
			t.Errorf("threshold %v: %d kept, want %d of %d (and a split)", g.mid, len(got), len(want), len(all))
		}
		for _, e := range got {
			if !want[pairKey(e)] {
				t.Errorf("threshold %v: kept %q (%s, p %v)", g.mid, e.Caption, e.Image, p[pairKey(e)])
			}
		}
		for _, src := range []string{SourceWeb, SourceSynthetic} {
			c := sum.Counts[src]
			total := 5
			if src == SourceSynthetic {
				total = 4 * o.SamplesPerImage
			}
			if c.Kept != kept[src] || c.Kept+c.Removed != total {
				t.Errorf("threshold %v: %s counts %+v, want %d kept of %d", g.mid, src, c, kept[src], total)
			}
		}
	}
}

// OUT.json loads with the reader `blip pretrain --data` uses, human pairs
// included, and every image resolves under the image root.
func TestCapfiltOutputLoadsForPretrain(t *testing.T) {
	be, ms := openTiny(t)
	dir := t.TempDir()
	web, root := webJSON(t, dir)
	human := writeJSON(t, filepath.Join(dir, "human.json"), []map[string]any{
		{"image": "coffee.png", "caption": []string{"a coffee cup", "coffee on a table"}},
		{"image": "rocket.jpg", "caption": "a rocket"},
	})
	images, err := ReadWeb(web, root)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ReadHuman(human)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Threshold = 0.2
	out := filepath.Join(dir, "out.json")
	sum, err := Run(be, ms, images, hs, out, o)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := dataset.ReadPairs(root, dataset.JSONOptions{}, out)
	if err != nil {
		t.Fatal(err)
	}
	es := readOut(t, out)
	if pairs.Len() != len(es) || len(es) < 3 {
		t.Fatalf("%d pairs read back, %d written", pairs.Len(), len(es))
	}
	humans := 0
	for i, e := range es {
		s, err := pairs.At(i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Caption != e.Caption || s.Key != e.Image {
			t.Errorf("pair %d: read %q %q, wrote %q %q", i, s.Key, s.Caption, e.Image, e.Caption)
		}
		if _, err := os.Stat(s.Path); err != nil {
			t.Errorf("pair %d: %v", i, err)
		}
		if e.Source == SourceHuman {
			humans++
			if e.Score != nil {
				t.Errorf("human pair %d has a score", i)
			}
		} else if e.Score == nil || float64(*e.Score) < o.Threshold {
			t.Errorf("pair %d: score %v below the threshold", i, e.Score)
		}
	}
	if humans != 3 || sum.Counts[SourceHuman].Kept != 3 {
		t.Errorf("%d human pairs, summary %+v; want 3", humans, sum.Counts[SourceHuman])
	}
	page, err := os.ReadFile(HTMLPath(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="kept"`, `class="removed"`, "astronaut.png"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("sample page lacks %s", want)
		}
	}
}

// An interrupted run (stopped after one batch, with a torn journal line
// appended as a crash mid-write would leave) resumes to a byte-identical
// OUT.json, summary and page.
func TestCapfiltResumeByteIdentical(t *testing.T) {
	be, ms := openTiny(t)
	dir := t.TempDir()
	web, root := webJSON(t, dir)
	images, err := ReadWeb(web, root)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Batch = 1
	o.Threshold = 0.3
	full := filepath.Join(dir, "full", "out.json")
	if _, err := Run(be, ms, images, nil, full, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(JournalPath(full)); !os.IsNotExist(err) {
		t.Errorf("journal left after success: %v", err)
	}
	part := filepath.Join(dir, "part", "out.json")
	os.MkdirAll(filepath.Dir(part), 0o755)
	stop := o
	stop.MaxBatches = 2
	if _, err := Run(be, ms, images, nil, part, stop); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("want ErrIncomplete, got %v", err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("OUT.json written by an incomplete run: %v", err)
	}
	j, err := os.ReadFile(JournalPath(part))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(j, []byte("\n")); n != 3 {
		t.Fatalf("journal has %d lines after 2 batches, want header + 2", n)
	}
	f, err := os.OpenFile(JournalPath(part), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"i":2,"image":"coffee.png","captions":[{"capt`)
	f.Close()
	// A journal from other settings is refused.
	other := o
	other.Seed++
	if _, err := Run(be, ms, images, nil, part, other); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Fatalf("resuming with another seed: %v", err)
	}
	progress := -1
	o.Progress = func(done, total int) {
		if progress < 0 {
			progress = done
		}
	}
	if _, err := Run(be, ms, images, nil, part, o); err != nil {
		t.Fatal(err)
	}
	if progress != 2 {
		t.Errorf("resume started at %d images done, want 2", progress)
	}
	for _, p := range [][2]string{{full, part}, {SummaryPath(full), SummaryPath(part)}} {
		a, _ := os.ReadFile(p[0])
		b, _ := os.ReadFile(p[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ:\n%s\n%s", p[0], p[1], a, b)
		}
	}
	a, _ := os.ReadFile(HTMLPath(full))
	b, _ := os.ReadFile(HTMLPath(part))
	// The pages link the images relative to their own folders, which are
	// siblings here: the same text.
	if !bytes.Equal(a, b) {
		t.Errorf("sample pages differ")
	}
}

// Two shards merged hold the same pairs as the unsharded run, and their
// summaries add up to its summary.
func TestCapfiltShardsMerge(t *testing.T) {
	be, ms := openTiny(t)
	dir := t.TempDir()
	web, root := webJSON(t, dir)
	images, err := ReadWeb(web, root)
	if err != nil {
		t.Fatal(err)
	}
	hs := []Entry{{Image: "coffee.png", Caption: "a coffee cup", Source: SourceHuman}}
	o := testOptions()
	o.Threshold = 0.2
	o.Batch = 3
	whole := filepath.Join(dir, "whole.json")
	wsum, err := Run(be, ms, images, hs, whole, o)
	if err != nil {
		t.Fatal(err)
	}
	var shards []string
	for i := range 2 {
		s := o
		s.Shard, s.Shards, s.Batch = i, 2, 1
		out := filepath.Join(dir, fmt.Sprintf("shard%d.json", i))
		if _, err := Run(be, ms, images, hs, out, s); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, out)
	}
	merged := filepath.Join(dir, "merged.json")
	msum, err := Merge(shards, merged)
	if err != nil {
		t.Fatal(err)
	}
	set := func(es []Entry) map[string]float32 {
		m := map[string]float32{}
		for _, e := range es {
			var s float32 = -1
			if e.Score != nil {
				s = *e.Score
			}
			if _, dup := m[pairKey(e)]; dup {
				t.Errorf("pair %q twice", pairKey(e))
			}
			m[pairKey(e)] = s
		}
		return m
	}
	a, b := set(readOut(t, whole)), set(readOut(t, merged))
	if len(a) != len(b) || len(a) < 2 {
		t.Errorf("unsharded %d pairs, merged %d", len(a), len(b))
	}
	for k, s := range a {
		if bs, ok := b[k]; !ok || math.Abs(float64(s-bs)) > 1e-5 {
			t.Errorf("pair %q: unsharded score %v, merged %v (present %v)", k, s, bs, ok)
		}
	}
	if msum.Images != wsum.Images || msum.ImagesFailed != wsum.ImagesFailed {
		t.Errorf("merged %d images (%d failed), unsharded %d (%d)", msum.Images, msum.ImagesFailed, wsum.Images, wsum.ImagesFailed)
	}
	for _, src := range []string{SourceWeb, SourceSynthetic, SourceHuman} {
		if msum.Counts[src] != wsum.Counts[src] {
			t.Errorf("%s: merged %+v, unsharded %+v", src, msum.Counts[src], wsum.Counts[src])
		}
	}
	if _, err := Merge([]string{shards[0], shards[0]}, filepath.Join(dir, "twice.json")); err == nil {
		t.Error("merging a shard twice was accepted")
	}
}

// Folders of the wrong kind are refused with a message naming the kind.
func TestCapfiltWrongKind(t *testing.T) {
	be := cpu.New()
	defer be.Close()
	_, err := OpenModels(be, filDir, filDir)
	if err == nil || !strings.Contains(err.Error(), "captioner") || !strings.Contains(err.Error(), "BlipForImageTextRetrieval") {
		t.Errorf("retrieval model as captioner: %v", err)
	}
	_, err = OpenModels(be, capDir, capDir)
	if err == nil || !strings.Contains(err.Error(), "filter") || !strings.Contains(err.Error(), "BlipForConditionalGeneration model") {
		t.Errorf("captioning model as filter: %v", err)
	}
	if err := CheckKind(capDir, "captioner", blip.KindCaptioning); err != nil {
		t.Errorf("captioner refused: %v", err)
	}
}

// Unreadable images are counted, listed, warned about and skipped; entries
// with missing fields are errors naming the entry.
func TestCapfiltBrokenImage(t *testing.T) {
	be, ms := openTiny(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.jpg")
	if err := os.WriteFile(broken, []byte("\xff\xd8\xff\xe0 not really a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.png")
	web, root := webJSON(t, dir,
		map[string]any{"image": broken, "caption": "a broken image"},
		map[string]any{"image": missing, "caption": "a missing image"})
	images, err := ReadWeb(web, root)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Threshold = 0
	var warn bytes.Buffer
	o.Warn = &warn
	out := filepath.Join(dir, "out.json")
	sum, err := Run(be, ms, images, nil, out, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ImagesFailed != 2 || len(sum.Failed) != 2 || sum.Failed[0].Image != broken || sum.Failed[1].Image != missing {
		t.Errorf("failures %d %+v", sum.ImagesFailed, sum.Failed)
	}
	if s := readSummary(t, out); s.ImagesFailed != 2 || len(s.Failed) != 2 {
		t.Errorf("summary file: %+v", s)
	}
	if strings.Count(warn.String(), "warning") != 2 || !strings.Contains(warn.String(), "broken.jpg") {
		t.Errorf("warnings: %q", warn.String())
	}
	es := readOut(t, out)
	if len(es) != 5+4*o.SamplesPerImage {
		t.Errorf("%d pairs, want the 4 good images' %d", len(es), 5+4*o.SamplesPerImage)
	}
	for _, e := range es {
		if e.Image == broken || e.Image == missing {
			t.Errorf("pair of a failed image: %+v", e)
		}
	}
	// Missing fields.
	bad := writeJSON(t, filepath.Join(dir, "bad.json"), []map[string]any{
		{"image": "a.png", "caption": "x"}, {"image": "b.png"},
	})
	if _, err := ReadWeb(bad, root); err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "caption") {
		t.Errorf("missing caption: %v", err)
	}
	bad = writeJSON(t, filepath.Join(dir, "bad2.json"), []map[string]any{{"caption": "x"}})
	if _, err := ReadWeb(bad, root); err == nil || !strings.Contains(err.Error(), "entry 0") || !strings.Contains(err.Error(), "image") {
		t.Errorf("missing image: %v", err)
	}
}

// synthetic returns each image's synthetic captions in a run's output.
func synthetic(es []Entry) map[string][]string {
	m := map[string][]string{}
	for _, e := range es {
		if e.Source == SourceSynthetic {
			m[e.Image] = append(m[e.Image], e.Caption)
		}
	}
	return m
}

// Sampled captions depend on the seed and the image only: another batch
// size, another image order and a subset give the same captions; another
// seed gives others. Beam search is deterministic too.
func TestCapfiltDeterministicSampling(t *testing.T) {
	be, ms := openTiny(t)
	dir := t.TempDir()
	web, root := webJSON(t, dir)
	images, err := ReadWeb(web, root)
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, imgs []Image, o Options) map[string][]string {
		t.Helper()
		o.Threshold = 0
		out := filepath.Join(dir, name)
		if _, err := Run(be, ms, imgs, nil, out, o); err != nil {
			t.Fatal(err)
		}
		return synthetic(readOut(t, out))
	}
	o := testOptions()
	o.SamplesPerImage = 3
	a := run("a.json", images, o)
	if len(a) != 4 {
		t.Fatalf("synthetic captions for %d images", len(a))
	}
	for img, cs := range a {
		if len(cs) != 3 {
			t.Errorf("%s: %d captions", img, len(cs))
		}
	}
	b4 := o
	b4.Batch = 4
	rev := []Image{images[3], images[1]}
	if b := run("b.json", images, b4); fmt.Sprint(b) != fmt.Sprint(a) {
		t.Errorf("batch 4 gave other captions:\n%v\n%v", b, a)
	}
	sub := run("sub.json", rev, o)
	for img, cs := range sub {
		if fmt.Sprint(cs) != fmt.Sprint(a[img]) {
			t.Errorf("%s alone: %v, in the full run %v", img, cs, a[img])
		}
	}
	other := o
	other.Seed++
	if c := run("c.json", images, other); fmt.Sprint(c) == fmt.Sprint(a) {
		t.Errorf("seed %d and %d gave the same captions", o.Seed, other.Seed)
	}
	beam := o
	beam.Beams, beam.SamplesPerImage, beam.RepetitionPenalty = 3, 2, 1
	d1 := run("d1.json", images, beam)
	beam.Batch = 1
	if d2 := run("d2.json", images, beam); fmt.Sprint(d1) != fmt.Sprint(d2) || len(d1) != 4 {
		t.Errorf("beam search: %v vs %v", d1, d2)
	}
}

func TestCapfiltParseShard(t *testing.T) {
	for s, want := range map[string][2]int{"": {0, 1}, "0/1": {0, 1}, "2/3": {2, 3}} {
		i, n, err := ParseShard(s)
		if err != nil || i != want[0] || n != want[1] {
			t.Errorf("%q: %d/%d %v", s, i, n, err)
		}
	}
	for _, s := range []string{"3/3", "-1/2", "1/0", "a/b", "1/2x", "1"} {
		if _, _, err := ParseShard(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
