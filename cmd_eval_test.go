package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blip/blip"
	"blip/data/metrics"
)

var evalTiny = filepath.Join("testdata", "hf-blip-tiny")

// writeEvalJSON writes v to a temporary JSON file.
func writeEvalJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ann.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func evalAnnotations(t *testing.T) string {
	return writeEvalJSON(t, []map[string]any{
		{"image": "astronaut.png", "caption": []string{"a man in a white space suit", "an astronaut holding a flag"}},
		{"image": "chelsea.png", "caption": []string{"a cat sitting on a table", "a brown cat on the grass"}},
		{"image": "coffee.png", "caption": []string{"a cup of coffee", "a white cup on a table"}},
		{"image": "rocket.jpg", "caption": []string{"a rocket on the launch pad", "a ship in front of the sky"}},
	})
}

func readMetrics(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// blip eval --task retrieval writes metrics.json whose recalls are those of
// the ranks in results.jsonl, on the --limit first images.
func TestEvalCLIRetrieval(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, err := run(t, "--backend", "cpu", "eval", "--task", "retrieval", "--model", filepath.Join(evalTiny, "tiny-retrieval"),
		"--data", evalAnnotations(t), "--image-root", filepath.Join(evalTiny, "images"), "--out", out,
		"--k", "2", "--limit", "3", "--batch", "2", "--itm-batch", "5"); err != nil {
		t.Fatal(err)
	}
	m := readMetrics(t, out)
	if m["images"] != 3.0 || m["texts"] != 6.0 || m["k"] != 2.0 || m["vision_passes"] != 3.0 {
		t.Errorf("metrics %v", m)
	}
	f, err := os.Open(filepath.Join(out, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ranks := map[string][]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Direction string `json:"direction"`
			Rank      int    `json:"rank"`
			Top       []struct {
				Score float64 `json:"score"`
			} `json:"top"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Top) != 2 || r.Top[0].Score < r.Top[1].Score {
			t.Errorf("record %s: top %v", sc.Text(), r.Top)
		}
		ranks[r.Direction] = append(ranks[r.Direction], r.Rank)
	}
	if len(ranks["i2t"]) != 3 || len(ranks["t2i"]) != 6 {
		t.Fatalf("records: %v", ranks)
	}
	at := func(rs []int, k int) float64 {
		n := 0
		for _, r := range rs {
			if r < k {
				n++
			}
		}
		return 100 * float64(n) / float64(len(rs))
	}
	for _, c := range []struct {
		key string
		dir string
		k   int
	}{{"txt_r1", "i2t", 1}, {"txt_r5", "i2t", 5}, {"img_r1", "t2i", 1}, {"img_r5", "t2i", 5}} {
		if got, want := m[c.key].(float64), at(ranks[c.dir], c.k); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, the ranks give %v", c.key, got, want)
		}
	}
}

// blip eval --task caption writes BLIP's result list and metrics equal to
// data/metrics on it; a second run replaces the folder.
func TestEvalCLICaption(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	ann := evalAnnotations(t)
	for range 2 {
		if _, err := run(t, "--backend", "cpu", "eval", "--task", "caption", "--model", filepath.Join(evalTiny, "tiny-captioning"),
			"--data", ann, "--image-root", filepath.Join(evalTiny, "images"), "--out", out, "--max-length", "10", "--batch", "3"); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results []map[string]any
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatal(err)
	}
	var anns []struct {
		Image   string   `json:"image"`
		Caption []string `json:"caption"`
	}
	raw, _ := os.ReadFile(ann)
	json.Unmarshal(raw, &anns)
	if len(results) != len(anns) {
		t.Fatalf("%d results", len(results))
	}
	cands, refs := map[string][]string{}, map[string][]string{}
	for i, r := range results {
		if len(r) != 2 || r["image_id"] != anns[i].Image {
			t.Errorf("result %d: %v (want BLIP's {image_id, caption})", i, r)
		}
		cands[anns[i].Image] = []string{r["caption"].(string)}
		refs[anns[i].Image] = anns[i].Caption
	}
	c, rf := metrics.PTBTokenizeAll(cands), metrics.PTBTokenizeAll(refs)
	bleu, _ := metrics.Bleu(c, rf)
	cider, _ := metrics.Cider(c, rf)
	m := readMetrics(t, out)
	if m["Bleu_1"] != bleu[0] || m["Bleu_4"] != bleu[3] || m["CIDEr"] != cider {
		t.Errorf("metrics %v; data/metrics: BLEU %v CIDEr %v", m, bleu, cider)
	}
}

// The wrong model class is refused before anything is written, and a
// folder that is not an earlier evaluation is never replaced.
func TestEvalCLIErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	dir := filepath.Join(evalTiny, "tiny-captioning")
	_, err := run(t, "--backend", "cpu", "eval", "--task", "retrieval", "--model", dir,
		"--data", evalAnnotations(t), "--image-root", filepath.Join(evalTiny, "images"), "--out", out)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "BlipForConditionalGeneration") {
		t.Errorf("captioning model for retrieval: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the output folder was created")
	}
	bad := writeEvalJSON(t, []map[string]any{{"image": "a.png", "caption": []string{"x"}}, {"image": "b.png", "caption": 3}})
	_, err = run(t, "--backend", "cpu", "eval", "--task", "caption", "--model", dir, "--data", bad, "--out", out)
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "caption") {
		t.Errorf("bad entry: %v", err)
	}
	other := t.TempDir()
	keep := filepath.Join(other, "keep.txt")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "--backend", "cpu", "eval", "--task", "caption", "--model", dir, "--data", evalAnnotations(t),
		"--image-root", filepath.Join(evalTiny, "images"), "--out", other)
	if err == nil || !strings.Contains(err.Error(), "not replacing") {
		t.Errorf("replacing a folder that is not an evaluation output: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the folder was touched: %v", err)
	}
}

// blip eval --task vqa on a test split writes BLIP's [{question_id,
// answer}] and no accuracy.
func TestEvalCLIVQATestSplit(t *testing.T) {
	model := filepath.Join(t.TempDir(), "qa")
	if err := blip.WriteRandomFolderFrom(model, filepath.Join(evalTiny, "tiny-captioning"), blip.KindQA, 7, 0.5); err != nil {
		t.Fatal(err)
	}
	qs := writeEvalJSON(t, []map[string]any{
		{"question_id": 5, "question": "what color is the cat?", "image": "chelsea.png"},
		{"question_id": 6, "question": "how many people?", "image": "astronaut.png"},
	})
	out := filepath.Join(t.TempDir(), "out")
	if _, err := run(t, "--backend", "cpu", "eval", "--task", "vqa", "--model", model, "--data", qs,
		"--image-root", filepath.Join(evalTiny, "images"), "--out", out, "--max-length", "5"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res []map[string]any
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0]["question_id"] != 5.0 || res[1]["question_id"] != 6.0 || len(res[0]) != 2 {
		t.Errorf("results %v", res)
	}
	if _, ok := res[0]["answer"].(string); !ok {
		t.Errorf("results %v", res)
	}
	if m := readMetrics(t, out); m["accuracy"] != nil || m["questions"] != 2.0 {
		t.Errorf("metrics %v", m)
	}
}

// blip classify ranks labels by the ITC cosine blip itm reports for the
// filled template.
func TestClassifyCLI(t *testing.T) {
	model := filepath.Join(evalTiny, "tiny-retrieval")
	img := filepath.Join(evalTiny, "images", "chelsea.png")
	labels := []string{"cat", "dog", "rocket", "cup"}
	out, err := run(t, "--backend", "cpu", "classify", "--model", model, "--labels", strings.Join(labels, ","), "--json", img)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Image  string `json:"image"`
		Labels []struct {
			Label  string  `json:"label"`
			Prob   float64 `json:"prob"`
			Cosine float64 `json:"cosine"`
		} `json:"labels"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	args := []string{"--backend", "cpu", "itm", "--model", model, "--image", img, "--json"}
	for _, l := range labels {
		args = append(args, "--text", "a picture of a "+l)
	}
	itmOut, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	cos := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(itmOut))
	for sc.Scan() {
		var r struct {
			Text   string  `json:"text"`
			Cosine float64 `json:"itc_cosine"`
		}
		json.Unmarshal(sc.Bytes(), &r)
		cos[strings.TrimPrefix(r.Text, "a picture of a ")] = r.Cosine
	}
	if rec.Image != img || len(rec.Labels) != len(labels) {
		t.Fatalf("record %+v", rec)
	}
	for r, l := range rec.Labels {
		if math.Abs(l.Cosine-cos[l.Label]) > 1e-4 {
			t.Errorf("%s: cosine %v, itm says %v", l.Label, l.Cosine, cos[l.Label])
		}
		if r > 0 && (cos[l.Label] > cos[rec.Labels[r-1].Label] || l.Prob > rec.Labels[r-1].Prob) {
			t.Errorf("label %s ranked after %s", l.Label, rec.Labels[r-1].Label)
		}
	}
	if _, err := run(t, "--backend", "cpu", "classify", "--model", filepath.Join(evalTiny, "tiny-captioning"), "--labels", "a,b", img); err == nil ||
		!strings.Contains(err.Error(), "tiny-captioning") {
		t.Errorf("captioning model: %v", err)
	}
}
