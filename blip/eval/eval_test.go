package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blip/blip"
	"blip/data/dataset"
	"blip/data/metrics"
	"blip/gpu"
	_ "blip/gpu/cpu"
	"blip/gpu/gputest"
)

var (
	tinyDir   = filepath.Join("..", "..", "testdata", "hf-blip-tiny")
	imagesDir = filepath.Join(tinyDir, "images")
	images    = []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}
)

func cpuBackend(t *testing.T) gpu.Backend {
	t.Helper()
	be, err := gpu.Open(gpu.Options{Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func openTiny(t *testing.T, be gpu.Backend, folder, what string, kind blip.ModelKind) *Env {
	t.Helper()
	env, err := Open(be, filepath.Join(tinyDir, folder), what, kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

// writeJSON writes v as a JSON file in a temporary folder.
func writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// captionAnnotations is a small evaluation file: the 4 images, 2 captions
// each, in the words of the tiny vocabulary.
func captionAnnotations(t *testing.T) string {
	caps := [][]string{
		{"a man in a white space suit", "an astronaut holding a flag"},
		{"a cat sitting on a table", "a brown cat on the grass"},
		{"a cup of coffee", "a white cup on a table"},
		{"a rocket on the launch pad", "a ship in front of the sky"},
	}
	var anns []map[string]any
	for i, img := range images {
		anns = append(anns, map[string]any{"image": img, "caption": caps[i]})
	}
	return writeJSON(t, "ann.json", anns)
}

// retrievalTest runs retrieval on the CPU and on Vulkan when present.
func TestRetrievalMatchesBruteForce(t *testing.T) {
	be := cpuBackend(t)
	checkRetrieval(t, be)
}

func TestRetrievalVulkan(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	checkRetrieval(t, gputest.Vulkan(t))
}

// checkRetrieval: with k = gallery size, retrieval's scores are those of
// brute-force ITM + ITC over every pair (MatchTexts), its recall is
// itm_eval of the brute-force matrices, each image goes through the vision
// encoder once per pass; with a small k the kept pairs are ITC's top-k and
// keep their brute-force scores.
func checkRetrieval(t *testing.T, be gpu.Backend) {
	env := openTiny(t, be, "tiny-retrieval", "retrieval", blip.KindRetrieval)
	ds, err := LoadRetrieval(captionAnnotations(t), imagesDir, FormatAuto, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	nImg, nTxt := len(ds.Entries), len(ds.Texts)
	// Brute force: every pair through MatchTexts.
	pixels, err := env.LoadPixels(paths(ds))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]int32, nTxt)
	for j, s := range ds.Texts {
		ids[j] = env.Encode(s, 35)
	}
	all, err := env.Model.MatchTexts(be, pixels, nImg, ids)
	if err != nil {
		t.Fatal(err)
	}
	full := make([][]float32, nImg)
	fullT := make([][]float32, nTxt)
	for j := range fullT {
		fullT[j] = make([]float32, nImg)
	}
	for i := range full {
		full[i] = make([]float32, nTxt)
		for j := range full[i] {
			full[i][j] = all[i][j].ITMLogits[1] + all[i][j].Cosine
			fullT[j][i] = full[i][j]
		}
	}
	want, err := ITMEval(full, fullT, ds.Img2Txt, ds.Txt2Img)
	if err != nil {
		t.Fatal(err)
	}
	const tol = 2e-4
	for _, cache := range []int64{0, -1} {
		// Batches of 3 images and 5 pairs exercise partial batches.
		res, err := Retrieval(env, ds, RetrievalOptions{K: 1000, Batch: 3, ITMRows: 5, TextBatch: 3, CacheStatesBytes: cache})
		if err != nil {
			t.Fatal(err)
		}
		passes := nImg
		if cache < 0 {
			passes = 2 * nImg
		}
		if res.VisionPasses != passes || res.Pairs != nImg*nTxt {
			t.Errorf("cache %d: %d vision passes, %d ITM pairs; want %d and %d", cache, res.VisionPasses, res.Pairs, passes, nImg*nTxt)
		}
		if res.Recall != want {
			t.Errorf("cache %d: recall %+v, brute force %+v", cache, res.Recall, want)
		}
		for i, tk := range res.I2T {
			checkOrder(t, "i2t", i, tk, full[i], tol)
		}
		for j, tk := range res.T2I {
			checkOrder(t, "t2i", j, tk, fullT[j], tol)
		}
		for i := range nImg {
			for j := range nTxt {
				if d := math.Abs(float64(res.Sims[i*nTxt+j] - all[i][j].Cosine)); d > 1e-5 {
					t.Errorf("cosine %d,%d: %v, MatchTexts %v", i, j, res.Sims[i*nTxt+j], all[i][j].Cosine)
				}
			}
		}
	}

	// k = 2: the kept pairs are ITC's top 2 of every query, scored as the
	// brute force; ITM runs once per distinct pair.
	res, err := Retrieval(env, ds, RetrievalOptions{K: 2, Batch: 2, ITMRows: 4})
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[[2]int]bool{}
	for i, tk := range res.I2T {
		itc := SelectTopK(res.Sims[i*nTxt:(i+1)*nTxt], 2)
		if !sameSet(tk.Index, itc.Index) {
			t.Errorf("image %d keeps texts %v, ITC top 2 are %v", i, tk.Index, itc.Index)
		}
		for r, j := range tk.Index {
			pairs[[2]int{i, j}] = true
			if d := math.Abs(float64(tk.Score[r] - full[i][j])); d > tol {
				t.Errorf("image %d text %d: %v, brute force %v", i, j, tk.Score[r], full[i][j])
			}
		}
	}
	for j, tk := range res.T2I {
		for r, i := range tk.Index {
			pairs[[2]int{i, j}] = true
			if d := math.Abs(float64(tk.Score[r] - full[i][j])); d > tol {
				t.Errorf("text %d image %d: %v, brute force %v", j, i, tk.Score[r], full[i][j])
			}
		}
	}
	if res.Pairs != len(pairs) {
		t.Errorf("%d ITM pairs scored, %d distinct pairs kept", res.Pairs, len(pairs))
	}
	recs := RetrievalRecords(ds, res, 10)
	if len(recs) != nImg+nTxt || recs[0].Rank != res.RankI2T[0] || len(recs[0].Top) != 2 {
		t.Errorf("records: %d, first %+v", len(recs), recs[0])
	}
}

func paths(ds *dataset.Retrieval) []string {
	var p []string
	for _, e := range ds.Entries {
		p = append(p, e.Path)
	}
	return p
}

func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// checkOrder checks a full top-k row: its scores are the brute force's and
// its order is the brute force's ranking, up to near ties.
func checkOrder(t *testing.T, dir string, q int, tk TopK, full []float32, tol float64) {
	t.Helper()
	if len(tk.Index) != len(full) {
		t.Errorf("%s %d: %d items kept of %d", dir, q, len(tk.Index), len(full))
		return
	}
	want := SelectTopK(full, len(full))
	for r, j := range tk.Index {
		if d := math.Abs(float64(tk.Score[r] - full[j])); d > tol {
			t.Errorf("%s %d item %d: score %v, brute force %v", dir, q, j, tk.Score[r], full[j])
		}
		if j != want.Index[r] && math.Abs(float64(full[j]-full[want.Index[r]])) > tol {
			t.Errorf("%s %d: rank %d holds %d, brute force ranks %d there", dir, q, r, j, want.Index[r])
		}
	}
}

// Caption eval's metrics equal data/metrics on the captions it writes,
// its captions are the model's beam search from the prompt with the prompt
// stripped, and batching does not change them.
func TestCaptionEval(t *testing.T) {
	be := cpuBackend(t)
	env := openTiny(t, be, "tiny-captioning", "caption", blip.KindCaptioning)
	file := captionAnnotations(t)
	es, err := LoadCaption(file, imagesDir, FormatAuto, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Caption(env, es, CaptionOptions{Batch: 3, MaxLength: 12})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != len(images) || res.Metrics == nil {
		t.Fatalf("%d captions, metrics %v", len(res.Items), res.Metrics)
	}
	cands, refs := map[string][]string{}, map[string][]string{}
	for i, it := range res.Items {
		if it.Key != images[i] || it.Caption == "" {
			t.Errorf("item %d: %+v", i, it)
		}
		cands[it.Key] = []string{it.Caption}
		refs[it.Key] = es[i].Captions
	}
	c, r := metrics.PTBTokenizeAll(cands), metrics.PTBTokenizeAll(refs)
	bleu, err := metrics.Bleu(c, r)
	if err != nil {
		t.Fatal(err)
	}
	cider, err := metrics.Cider(c, r)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Metrics
	if got.Bleu1 != bleu[0] || got.Bleu2 != bleu[1] || got.Bleu3 != bleu[2] || got.Bleu4 != bleu[3] || got.CIDEr != cider || got.Images != 4 {
		t.Errorf("metrics %+v, data/metrics gives BLEU %v CIDEr %v", got, bleu, cider)
	}
	// The first image alone, straight through the model.
	prompt := env.Encode(CaptionPrompt, 0)
	pixels, err := env.LoadPixels([]string{filepath.Join(imagesDir, images[0])})
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.Model.CaptionConfig()
	cfg.NumBeams, cfg.MaxLength, cfg.MinLength = 3, 12, 5
	out, err := env.Model.GenerateCaptions(be, pixels, 1, [][]int32{prompt}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := out.Sequences[0][:out.Lengths[0]]
	if !slices.Equal(ids, res.Items[0].TokenIDs) {
		t.Errorf("batched ids %v, alone %v", res.Items[0].TokenIDs, ids)
	}
	full := env.Decode(ids)
	if !strings.HasPrefix(full, "a picture of ") || full != "a picture of "+res.Items[0].Caption {
		t.Errorf("caption %q, decoded %q", res.Items[0].Caption, full)
	}

	// Outputs: written atomically, replaced only over an earlier evaluation.
	dir := filepath.Join(t.TempDir(), "out")
	m, _ := JSONFile(MetricsFile, res.Metrics)
	if err := WriteOutputs(dir, []Output{m}); err != nil {
		t.Fatal(err)
	}
	if err := WriteOutputs(dir, []Output{m}); err != nil {
		t.Errorf("replacing an earlier evaluation: %v", err)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "keep.txt"), []byte("x"), 0o644)
	if err := WriteOutputs(other, []Output{m}); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("replacing an unrelated folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Errorf("the unrelated folder was touched: %v", err)
	}
}

// COCO paths give COCO image ids, as BLIP's coco_karpathy_caption_eval.
func TestLoadCaptionCocoIDs(t *testing.T) {
	file := writeJSON(t, "coco.json", []map[string]any{
		{"image": "val2014/COCO_val2014_000000391895.jpg", "caption": []string{"a man"}},
		{"image": "val2014/COCO_val2014_000000000042.jpg", "caption": []string{"a dog"}},
	})
	for _, f := range []string{FormatAuto, FormatCOCO} {
		es, err := LoadCaption(file, "", f, 0)
		if err != nil {
			t.Fatal(err)
		}
		if es[0].ImageID != "391895" || es[1].ImageID != "42" {
			t.Errorf("%s: ids %q %q", f, es[0].ImageID, es[1].ImageID)
		}
	}
	es, err := LoadCaption(file, "", FormatBLIP, 1)
	if err != nil || len(es) != 1 || es[0].ImageID != es[0].Image {
		t.Errorf("blip format, limit 1: %+v %v", es, err)
	}
}

// A model of another class is refused, naming the folder and the classes.
func TestWrongModelKind(t *testing.T) {
	be := cpuBackend(t)
	dir := filepath.Join(tinyDir, "tiny-captioning")
	_, err := Open(be, dir, "retrieval", blip.KindRetrieval)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "BlipForConditionalGeneration") ||
		!strings.Contains(err.Error(), "BlipForImageTextRetrieval") {
		t.Errorf("captioning folder for retrieval: %v", err)
	}
	dir = filepath.Join(tinyDir, "tiny-retrieval")
	if _, err := Open(be, dir, "caption", blip.KindCaptioning); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("retrieval folder for captioning: %v", err)
	}
}

// Entries with a missing field are errors naming the file, the entry and
// the field.
func TestMissingFields(t *testing.T) {
	file := writeJSON(t, "ann.json", []map[string]any{
		{"image": "a.png", "caption": []string{"x"}},
		{"image": "b.png"},
	})
	for name, load := range map[string]func() error{
		"retrieval": func() error { _, err := LoadRetrieval(file, "", FormatAuto, 30, 0); return err },
		"caption":   func() error { _, err := LoadCaption(file, "", FormatAuto, 0); return err },
	} {
		err := load()
		if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), `"caption"`) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", name, err)
		}
	}
	noImage := writeJSON(t, "ann.json", []map[string]any{{"caption": []string{"x"}}})
	if _, err := LoadRetrieval(noImage, "", FormatAuto, 30, 0); err == nil || !strings.Contains(err.Error(), "entry 0") || !strings.Contains(err.Error(), `"image"`) {
		t.Errorf("no image: %v", err)
	}
	vqa := writeJSON(t, "vqa.json", []map[string]any{
		{"question_id": 1, "question": "what?", "image": "a.png"},
		{"question_id": 2, "image": "a.png"},
	})
	if _, err := LoadVQA(vqa, "", "", "", FormatAuto, 0); err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), `"question"`) {
		t.Errorf("vqa: %v", err)
	}
	if _, err := LoadRetrieval(file, "", FormatVQAOfficial, 30, 0); err == nil {
		t.Error("retrieval must refuse the vqa-official format")
	}
}

// VQA: generated answers scored with the official accuracy, rank mode
// picks the answer RankAnswers picks, and a test split (no answers) gives
// results without metrics.
func TestVQAEval(t *testing.T) {
	be := cpuBackend(t)
	dir := filepath.Join(t.TempDir(), "qa")
	if err := blip.WriteRandomFolderFrom(dir, filepath.Join(tinyDir, "tiny-captioning"), blip.KindQA, 7, 0.5); err != nil {
		t.Fatal(err)
	}
	env, err := Open(be, dir, "vqa", blip.KindQA)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	qs := []map[string]any{
		{"question_id": 10, "question": "what color is the cat?", "image": "chelsea.png", "answer": []string{"brown", "brown", "white"}},
		{"question_id": 11, "question": "how many people?", "image": "astronaut.png", "answer": []string{"one", "1", "two"}},
		{"question_id": 12, "question": "is this a rocket?", "image": "rocket.jpg", "answer": []string{"yes"}},
	}
	set, err := LoadVQA(writeJSON(t, "vqa.json", qs), "", imagesDir, "", FormatAuto, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := VQA(env, set, VQAOptions{Batch: 2, MaxLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics == nil || res.Metrics.Questions != 3 || len(res.Items) != 3 {
		t.Fatalf("result %+v", res)
	}
	sum := 0.0
	for i, it := range res.Items {
		a := metrics.VQAAccuracy(it.Answer, set.Questions[i].Answers)
		if it.Accuracy == nil || *it.Accuracy != a {
			t.Errorf("question %d: accuracy %v, want %v", i, it.Accuracy, a)
		}
		sum += a
	}
	if math.Abs(res.Metrics.Accuracy-100*sum/3) > 1e-9 {
		t.Errorf("accuracy %v, want %v", res.Metrics.Accuracy, 100*sum/3)
	}

	answers := []string{"yes", "no", "brown", "white", "one", "two", "rocket"}
	res, err = VQA(env, set, VQAOptions{Batch: 2, AnswerList: answers, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	cands := make([][]int32, len(answers))
	for i, a := range answers {
		cands[i] = env.Encode(a, 0)
	}
	for i, q := range set.Questions {
		pixels, err := env.LoadPixels([]string{q.Path})
		if err != nil {
			t.Fatal(err)
		}
		r, err := env.Model.RankAnswers(be, pixels, 1, [][]int32{env.Encode(q.Question, 0)}, cands, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Items[i].Answer; got != answers[r[0].Best] {
			t.Errorf("question %d: rank mode answered %q, RankAnswers %q", i, got, answers[r[0].Best])
		}
	}

	for _, q := range qs {
		delete(q, "answer")
	}
	set, err = LoadVQA(writeJSON(t, "test.json", qs), "", imagesDir, "", FormatAuto, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err = VQA(env, set, VQAOptions{MaxLength: 5})
	if err != nil || res.Metrics != nil || len(res.Items) != 2 || res.Items[1].QuestionID != int64(11) {
		t.Errorf("test split: %+v %v", res, err)
	}
}

// Zero-shot classification ranks the labels by the ITC cosine of the
// image's and the filled templates' embeddings.
func TestClassify(t *testing.T) {
	be := cpuBackend(t)
	env := openTiny(t, be, "tiny-retrieval", "classify", blip.KindRetrieval)
	labels := []string{"cat", "rocket", "cup of coffee", "astronaut", "dog"}
	var ps []string
	for _, im := range images {
		ps = append(ps, filepath.Join(imagesDir, im))
	}
	res, err := Classify(env, ps, labels, ClassifyOptions{Template: "a photo of a {}", Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	pixels, err := env.LoadPixels(ps)
	if err != nil {
		t.Fatal(err)
	}
	img, err := env.Model.ImageEmbeddings(be, pixels, len(ps))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]int32, len(labels))
	for i, l := range labels {
		ids[i] = env.Encode("a photo of a "+l, 0)
	}
	txt, err := env.Model.TextEmbeddings(be, ids)
	if err != nil {
		t.Fatal(err)
	}
	d := env.Model.Config.ImageTextHiddenSize
	for b := range ps {
		if len(res[b]) != len(labels) {
			t.Fatalf("image %d: %d labels", b, len(res[b]))
		}
		sum := 0.0
		for r, ls := range res[b] {
			cos := 0.0
			for k := range d {
				cos += float64(img[b*d+k]) * float64(txt[ls.Index*d+k])
			}
			if math.Abs(cos-ls.Cosine) > 1e-5 || ls.Label != labels[ls.Index] {
				t.Errorf("image %d label %q: cosine %v, embeddings give %v", b, ls.Label, ls.Cosine, cos)
			}
			if r > 0 && (ls.Cosine > res[b][r-1].Cosine || ls.Prob > res[b][r-1].Prob) {
				t.Errorf("image %d: label %d out of order: %+v after %+v", b, r, ls, res[b][r-1])
			}
			sum += ls.Prob
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("image %d: probabilities sum to %v", b, sum)
		}
		// softmax(cos / 0.07): the ratio of two probabilities.
		p0, p1 := res[b][0], res[b][1]
		if want := math.Exp((p0.Cosine - p1.Cosine) / DefaultTemperature); math.Abs(p0.Prob/p1.Prob-want) > 1e-9*want {
			t.Errorf("image %d: probability ratio %v, want %v", b, p0.Prob/p1.Prob, want)
		}
	}
	if got := FillTemplate("a {} and a {}", "cat"); got != "a cat and a cat" {
		t.Errorf("FillTemplate: %q", got)
	}
	if got := FillTemplate("a picture of ", "cat"); got != "a picture of cat" {
		t.Errorf("FillTemplate without braces: %q", got)
	}
}

// With ITMEncToken the ITM half of every score is MatchTexts' logit for the
// text starting with [ENC]; the ITC half keeps [CLS].
func TestRetrievalENCToken(t *testing.T) {
	be := cpuBackend(t)
	env := openTiny(t, be, "tiny-retrieval", "retrieval", blip.KindRetrieval)
	ds, err := LoadRetrieval(captionAnnotations(t), imagesDir, FormatAuto, 30, 2)
	if err != nil {
		t.Fatal(err)
	}
	pixels, err := env.LoadPixels(paths(ds))
	if err != nil {
		t.Fatal(err)
	}
	cls, enc := make([][]int32, len(ds.Texts)), make([][]int32, len(ds.Texts))
	for j, s := range ds.Texts {
		cls[j] = env.Encode(s, 35)
		enc[j] = append([]int32{int32(env.Tok.Enc)}, cls[j][1:]...)
	}
	withCLS, err := env.Model.MatchTexts(be, pixels, len(ds.Entries), cls)
	if err != nil {
		t.Fatal(err)
	}
	withENC, err := env.Model.MatchTexts(be, pixels, len(ds.Entries), enc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Retrieval(env, ds, RetrievalOptions{K: 100, ITMEncToken: true})
	if err != nil {
		t.Fatal(err)
	}
	differs := false
	for i, tk := range res.I2T {
		for r, j := range tk.Index {
			want := withENC[i][j].ITMLogits[1] + withCLS[i][j].Cosine
			if math.Abs(float64(tk.Score[r]-want)) > 2e-4 {
				t.Errorf("image %d text %d: %v, want %v", i, j, tk.Score[r], want)
			}
			differs = differs || math.Abs(float64(withENC[i][j].ITMLogits[1]-withCLS[i][j].ITMLogits[1])) > 1e-3
		}
	}
	if !differs {
		t.Error("[ENC] and [CLS] give the same ITM logits: the test cannot tell them apart")
	}
}
