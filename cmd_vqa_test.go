package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"blip/blip"
	"blip/data/safetensors"
)

var (
	tinyTestDir = filepath.Join("testdata", "hf-blip-tiny")
	astronaut   = filepath.Join(tinyTestDir, "images", "astronaut.png")
	goldenTexts = []string{"a man in a white space suit", "a cat sitting on a table", "a cup of coffee", "a rocket on the launch pad"}
)

// tinyVQAFolder writes a random BlipForQuestionAnswering folder with the
// tiny captioning config.
func tinyVQAFolder(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny-vqa")
	if err := blip.WriteRandomFolderFrom(dir, filepath.Join(tinyTestDir, "tiny-captioning"), blip.KindQA, 7, 0.5); err != nil {
		t.Fatal(err)
	}
	return dir
}

func goldenF32(t *testing.T, name string) []float32 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(tinyTestDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// blip vqa answers with [DEC]-first token ids, greedy and with beams, and in
// rank mode returns one of the candidates.
func TestVQACLI(t *testing.T) {
	dir := tinyVQAFolder(t)
	for _, args := range [][]string{{}, {"--beams", "3"}, {"--candidate", "a cat", "--candidate", "rocket", "--top-k", "1"}} {
		out, err := run(t, append([]string{"--backend", "cpu", "vqa", "--model", dir, "--image", astronaut,
			"--question", "what is in the picture?", "--max-length", "8", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var rec struct {
			Question string  `json:"question"`
			Answer   *string `json:"answer"`
			TokenIDs []int32 `json:"token_ids"`
		}
		if err := json.Unmarshal([]byte(out), &rec); err != nil {
			t.Fatalf("%v: %q: %v", args, out, err)
		}
		t.Logf("%v: %s", args, strings.TrimSpace(out))
		if rec.Question != "what is in the picture?" || rec.Answer == nil || len(rec.TokenIDs) < 2 || len(rec.TokenIDs) > 8 {
			t.Errorf("%v: %+v", args, rec)
		}
		if len(args) == 0 && rec.TokenIDs[0] != 135 {
			t.Errorf("answer does not start with [DEC]: %v", rec.TokenIDs)
		}
		if len(args) > 2 && *rec.Answer != "a cat" && *rec.Answer != "rocket" {
			t.Errorf("rank mode answered %q", *rec.Answer)
		}
	}
}

// Bad VQA input: an empty question, a captioning folder, a missing image.
func TestVQACLIErrors(t *testing.T) {
	dir := tinyVQAFolder(t)
	capDir := filepath.Join(tinyTestDir, "tiny-captioning")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--model", dir, "--image", astronaut, "--question", "  "}, []string{"question is empty"}},
		{[]string{"--model", capDir, "--image", astronaut, "--question", "what?"}, []string{capDir, "BlipForConditionalGeneration", "BlipForQuestionAnswering"}},
		{[]string{"--model", dir, "--image", "nope.png", "--question", "what?"}, []string{"nope.png"}},
	} {
		_, err := run(t, append([]string{"--backend", "cpu", "vqa"}, c.args...)...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want it to name %q", c.args, err, w)
			}
		}
	}
}

// blip itm on the golden retrieval model: image 0 against the 4 golden
// captions gives transformers' ITM logits (all-pairs rows 0..3) and ITC
// cosines (row 0); a captioning folder and a missing image are refused.
func TestITMCLI(t *testing.T) {
	args := []string{"--backend", "cpu", "itm", "--model", filepath.Join(tinyTestDir, "tiny-retrieval"), "--image", astronaut, "--json"}
	for _, s := range goldenTexts {
		args = append(args, "--text", s)
	}
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	logits, cos := goldenF32(t, "itm.itm_logits_all_pairs"), goldenF32(t, "itm.cosine_sim")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(goldenTexts) {
		t.Fatalf("%d lines: %q", len(lines), out)
	}
	const tol = 1e-4 // the PNG decode and resize reproduce golden pixel_values
	for j, line := range lines {
		var rec struct {
			Text      string     `json:"text"`
			ITMScore  float64    `json:"itm_score"`
			ITMLogits [2]float64 `json:"itm_logits"`
			ITCCosine float64    `json:"itc_cosine"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Text != goldenTexts[j] {
			t.Errorf("line %d: text %q", j, rec.Text)
		}
		want := [2]float64{float64(logits[2*j]), float64(logits[2*j+1])}
		if !near(rec.ITMLogits[0], want[0], tol) || !near(rec.ITMLogits[1], want[1], tol) {
			t.Errorf("text %d: itm_logits %v, transformers %v", j, rec.ITMLogits, want)
		}
		if p := 1 / (1 + math.Exp(want[0]-want[1])); !near(rec.ITMScore, p, tol) {
			t.Errorf("text %d: itm_score %v, want %v", j, rec.ITMScore, p)
		}
		if !near(rec.ITCCosine, float64(cos[j]), tol) {
			t.Errorf("text %d: itc_cosine %v, transformers %v", j, rec.ITCCosine, cos[j])
		}
	}
	_, err = run(t, "--backend", "cpu", "itm", "--model", filepath.Join(tinyTestDir, "tiny-captioning"), "--image", astronaut, "--text", "a cat")
	if err == nil || !strings.Contains(err.Error(), "BlipForImageTextRetrieval") || !strings.Contains(err.Error(), "tiny-captioning") {
		t.Errorf("itm with a captioning model: %v", err)
	}
	_, err = run(t, "--backend", "cpu", "itm", "--model", filepath.Join(tinyTestDir, "tiny-retrieval"), "--image", "missing.jpg", "--text", "a cat")
	if err == nil || !strings.Contains(err.Error(), "missing.jpg") {
		t.Errorf("itm with a missing image: %v", err)
	}
}

// blip embed writes unit-norm features whose dot products are
// transformers' cosine similarities, with the inputs in the metadata.
func TestEmbedCLI(t *testing.T) {
	images := []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}
	outPath := filepath.Join(t.TempDir(), "emb.safetensors")
	args := []string{"--backend", "cpu", "embed", "--model", filepath.Join(tinyTestDir, "tiny-retrieval"), "--out", outPath}
	for _, im := range images {
		args = append(args, "--images", filepath.Join(tinyTestDir, "images", im))
	}
	for _, s := range goldenTexts {
		args = append(args, "--texts", s)
	}
	if _, err := run(t, args...); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := f.Float32("image_embeds")
	if err != nil {
		t.Fatal(err)
	}
	txt, err := f.Float32("text_embeds")
	if err != nil {
		t.Fatal(err)
	}
	var names, texts []string
	md := f.Metadata()
	if err := json.Unmarshal([]byte(md["images"]), &names); err != nil || len(names) != 4 || filepath.Base(names[3]) != "rocket.jpg" {
		t.Errorf("images metadata %q (%v)", md["images"], err)
	}
	if err := json.Unmarshal([]byte(md["texts"]), &texts); err != nil || len(texts) != 4 || texts[2] != goldenTexts[2] {
		t.Errorf("texts metadata %q (%v)", md["texts"], err)
	}
	cos := goldenF32(t, "itm.cosine_sim")
	d := len(img) / 4
	if len(txt) != 4*d {
		t.Fatalf("%d image and %d text values", len(img), len(txt))
	}
	for i := range 4 {
		var n float64
		for k := range d {
			n += float64(img[i*d+k]) * float64(img[i*d+k])
		}
		if !near(n, 1, 1e-4) {
			t.Errorf("image %d: squared norm %v", i, n)
		}
		for j := range 4 {
			var dot float64
			for k := range d {
				dot += float64(img[i*d+k]) * float64(txt[j*d+k])
			}
			if !near(dot, float64(cos[i*4+j]), 1e-3) {
				t.Errorf("image %d text %d: dot %v, transformers cosine %v", i, j, dot, cos[i*4+j])
			}
		}
	}
	if _, err := run(t, "--backend", "cpu", "embed", "--model", filepath.Join(tinyTestDir, "tiny-retrieval"), "--out", outPath); err == nil {
		t.Error("embed with nothing to embed: no error")
	}
}
