package finetune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blip/blip"
	"blip/data/dataset"
	"blip/data/safetensors"
	"blip/data/tokenizer"
	"blip/gpu"
	"blip/gpu/cpu"
	"blip/graph"
)

const tinyDir = "../../testdata/hf-blip-tiny"

var tinyImages = []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}

// captionData writes a BLIP caption annotation file of n entries over the
// tiny images.
func captionData(t *testing.T, n int) *dataset.Pairs {
	t.Helper()
	captions := map[string]string{
		"astronaut.png": "an astronaut holding a flag",
		"chelsea.png":   "a cat sitting on a table",
		"coffee.png":    "a cup of coffee on a table",
		"rocket.jpg":    "a rocket on the launch pad",
	}
	var entries []map[string]string
	for i := range n {
		im := tinyImages[i%len(tinyImages)]
		entries = append(entries, map[string]string{"image": im, "caption": captions[im]})
	}
	file := writeJSON(t, entries)
	p, err := dataset.ReadPairs(filepath.Join(tinyDir, "images"), dataset.JSONOptions{}, file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vqaData writes a BLIP VQA annotation file over the tiny images.
func vqaData(t *testing.T) *dataset.VQASet {
	t.Helper()
	entries := []map[string]any{
		{"question_id": 1, "image": "astronaut.png", "question": "what color is the flag?", "answer": []string{"red", "red", "blue"}},
		{"question_id": 2, "image": "chelsea.png", "question": "is this a cat?", "answer": []string{"yes"}},
		{"question_id": 3, "image": "coffee.png", "question": "what is on the table?", "answer": []string{"coffee", "cup", "a cup", "coffee"}},
		{"question_id": 4, "image": "rocket.jpg", "question": "how many rockets?", "answer": []string{"one", "one", "one", "two"}},
	}
	v, err := dataset.ReadVQAJSON(writeJSON(t, entries), dataset.VQARoots{VQA: filepath.Join(tinyDir, "images")}, dataset.VQAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ann.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// qaFolder writes a VQA folder with random weights over the tiny config.
func qaFolder(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "qa")
	if err := blip.WriteRandomFolderFrom(dir, filepath.Join(tinyDir, "tiny-captioning"), blip.KindQA, 3, 0.05); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testConfig(task, init string) *Config {
	c := Defaults(task)
	c.Init = init
	c.BatchSize, c.Epochs, c.Workers = 4, 1, 2
	c.MaxLength, c.AnswerLength, c.MaxAnswers = 12, 5, 3
	c.Dropout, c.Augment = 0, false
	return &c
}

func loadModel(t *testing.T, dir string, be gpu.Backend) (*blip.Model, *tokenizer.Tokenizer) {
	t.Helper()
	m, err := blip.LoadDir(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadVocab(filepath.Join(dir, blip.VocabName))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// TestEncodeCaptionMasksPrompt: the prompt's words get no loss, the
// caption's words and [SEP] do, padding does not.
func TestEncodeCaptionMasksPrompt(t *testing.T) {
	tok, err := tokenizer.LoadVocab(filepath.Join(tinyDir, "tiny-captioning", blip.VocabName))
	if err != nil {
		t.Fatal(err)
	}
	ids, mask, labels, err := encodeCaption(tok, tok.Dec, "a picture of ", "A cat!", 30, 10)
	if err != nil {
		t.Fatal(err)
	}
	id := func(w string) int32 { i, _ := tok.TokenToID(w); return int32(i) }
	wantIDs := []int32{int32(tok.Dec), id("a"), id("picture"), id("of"), id("a"), id("cat"), int32(tok.Sep), 0, 0, 0}
	wantLabels := []int32{graph.IgnoreIndex, graph.IgnoreIndex, graph.IgnoreIndex, id("a"), id("cat"), int32(tok.Sep), graph.IgnoreIndex, graph.IgnoreIndex, graph.IgnoreIndex}
	for i := range wantIDs {
		if ids[i] != wantIDs[i] || (mask[i] == 1) != (i < 7) {
			t.Fatalf("ids %v mask %v, want %v with 7 kept", ids, mask, wantIDs)
		}
	}
	for i := range wantLabels {
		if labels[i] != wantLabels[i] {
			t.Fatalf("labels %v, want %v", labels, wantLabels)
		}
	}
	if _, _, _, err := encodeCaption(tok, tok.Dec, "", "  ", 30, 10); err == nil {
		t.Error("an empty caption was accepted")
	}
}

// smoothedCE is PyTorch's cross_entropy with label smoothing for one row.
func smoothedCE(logits []float32, label int, eps float64) float64 {
	mx := math.Inf(-1)
	for _, x := range logits {
		mx = math.Max(mx, float64(x))
	}
	var z float64
	for _, x := range logits {
		z += math.Exp(float64(x) - mx)
	}
	lse := mx + math.Log(z)
	var mean float64
	for _, x := range logits {
		mean += lse - float64(x)
	}
	mean /= float64(len(logits))
	return (1-eps)*(lse-float64(logits[label])) + eps*mean
}

// TestCaptionLossMatchesReference: the step's loss is the mean smoothed
// cross-entropy of the caption tokens, computed here from the model's
// teacher-forced logits.
func TestCaptionLossMatchesReference(t *testing.T) {
	be := cpu.New()
	dir := filepath.Join(tinyDir, "tiny-captioning")
	m, tok := loadModel(t, dir, be)
	defer m.Close()
	cfg := testConfig("caption", dir)
	b, err := NewBatcher(cfg, &m.Config.VisionConfig, captionData(t, 4), tok, Tokens{Dec: tok.Dec, Pad: tok.Pad}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	batch, _, err := b.Next(dataset.Position{})
	if err != nil {
		t.Fatal(err)
	}
	bs, n := cfg.BatchSize, cfg.MaxLength
	g := graph.New()
	v := &m.Config.VisionConfig
	pin := g.Input("p", gpu.F32, bs, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	iin, min := g.Input("i", gpu.I32, bs, n), g.Input("m", gpu.F32, bs, n)
	img, _ := m.VisionForward(g, pin)
	lg, err := m.CaptionLogits(g, img, iin, min)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{lg}})
	if err != nil {
		t.Fatal(err)
	}
	plan.WriteF32(pin, batch.Patches)
	plan.WriteI32(iin, batch.IDs)
	plan.WriteF32(min, batch.Mask)
	if err := plan.Run(); err != nil {
		t.Fatal(err)
	}
	vocab := m.Config.TextConfig.VocabSize
	logits := make([]float32, bs*n*vocab)
	plan.ReadF32(lg, logits)
	plan.Close()
	var sum float64
	var count int
	for r := range bs {
		for j := range n - 1 {
			l := batch.Labels[r*(n-1)+j]
			if l < 0 {
				continue
			}
			sum += smoothedCE(logits[(r*n+j)*vocab:(r*n+j+1)*vocab], int(l), cfg.LabelSmoothing)
			count++
		}
	}
	want := sum / float64(count)

	checkStepLoss(t, "caption", cfg, m, be, batch, want)
}

// checkStepLoss runs one training step of cfg on batch and compares its
// loss with the reference want (relative 1e-5).
func checkStepLoss(t *testing.T, task string, cfg *Config, m *blip.Model, be gpu.Backend, batch *Batch, want float64) {
	t.Helper()
	tr, err := NewTrainer(cfg, m, be, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	mt, err := tr.Step(batch)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mt.Loss-want) > 1e-5*math.Max(1, want) {
		t.Errorf("%s loss %.7g, reference %.7g", task, mt.Loss, want)
	}
}

// TestVQALossMatchesReference: the step's loss is BLIP_VQA's
// sum_a weight_a * sum_t CE(a, t) / B, computed here from the question
// states and the decoder's teacher-forced logits of every answer.
func TestVQALossMatchesReference(t *testing.T) {
	be := cpu.New()
	dir := qaFolder(t)
	m, tok := loadModel(t, dir, be)
	defer m.Close()
	cfg := testConfig("vqa", dir)
	b, err := NewBatcher(cfg, &m.Config.VisionConfig, vqaData(t), tok, Tokens{Dec: tok.Dec, Pad: tok.Pad}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	batch, _, err := b.Next(dataset.Position{})
	if err != nil {
		t.Fatal(err)
	}
	bs, n, ta := cfg.BatchSize, cfg.MaxLength, cfg.AnswerLength
	// Question states: the ViT and the encoder, in their own graph.
	g := graph.New()
	v := &m.Config.VisionConfig
	pin := g.Input("p", gpu.F32, bs, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize)
	iin, min := g.Input("i", gpu.I32, bs, n), g.Input("m", gpu.F32, bs, n)
	img, _ := m.VisionForward(g, pin)
	q := m.TextEncoder.Forward(g, iin, blip.TextInput{Mask: min, Image: img})
	plan, err := g.Compile(be, graph.Config{Outputs: []*graph.Tensor{q}})
	if err != nil {
		t.Fatal(err)
	}
	plan.WriteF32(pin, batch.Patches)
	plan.WriteI32(iin, batch.IDs)
	plan.WriteF32(min, batch.Mask)
	if err := plan.Run(); err != nil {
		t.Fatal(err)
	}
	h := m.Config.TextConfig.HiddenSize
	states := make([]float32, bs*n*h)
	plan.ReadF32(q, states)
	plan.Close()
	enc := &blip.EncoderStates{States: states, Items: bs, Tokens: n, Width: h, Mask: batch.Mask}
	itemOf := make([]int, len(batch.AnsQ))
	for i, x := range batch.AnsQ {
		itemOf[i] = int(x)
	}
	logits, err := m.DecoderLogits(be, enc, itemOf, batch.AnsIDs, batch.AnsMask, ta)
	if err != nil {
		t.Fatal(err)
	}
	vocab := m.Config.TextConfig.VocabSize
	var want float64
	used := 0
	for a := range len(itemOf) {
		w := float64(batch.AnsWeight[a])
		if w == 0 {
			continue
		}
		used++
		var seq float64
		for j := range ta - 1 {
			l := batch.AnsLabels[a*(ta-1)+j]
			if l < 0 {
				continue
			}
			seq += smoothedCE(logits[(a*ta+j)*vocab:(a*ta+j+1)*vocab], int(l), cfg.LabelSmoothing)
		}
		want += w * seq
	}
	want /= float64(bs)
	if used < 6 {
		t.Fatalf("only %d answer rows in use: the data should give 8", used)
	}

	checkStepLoss(t, "vqa", cfg, m, be, batch, want)
}

// TestAnswerRows keeps the most frequent answers with BLIP's weights.
func TestAnswerRows(t *testing.T) {
	q := dataset.VQAQuestion{Answers: []string{"b", "a", "a", "c", "a", "b"}, Dataset: "vqa"}
	as, ws := answerRows(q, 2)
	if len(as) != 2 || as[0] != "a" || as[1] != "b" || math.Abs(ws[0]-0.5) > 1e-12 || math.Abs(ws[1]-1.0/3) > 1e-12 {
		t.Errorf("answers %v weights %v, want [a b] [0.5 0.333]", as, ws)
	}
}

func runFinetune(t *testing.T, cfg *Config, ds dataset.Indexed, out string, opts Options) (*Summary, []Metrics) {
	t.Helper()
	var ms []Metrics
	opts.Out = out
	opts.Progress = func(m Metrics, _ float64) { ms = append(ms, m) }
	sum, err := Run(cfg, cpu.New(), ds, opts)
	if err != nil && !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	return sum, ms
}

// TestFinetuneLearns: a few epochs on four captions and four questions
// bring the losses well down, and the written folder loads.
func TestFinetuneLearns(t *testing.T) {
	for _, task := range []string{"caption", "vqa"} {
		t.Run(task, func(t *testing.T) {
			var cfg *Config
			var ds dataset.Indexed
			if task == "caption" {
				cfg, ds = testConfig(task, filepath.Join(tinyDir, "tiny-captioning")), captionData(t, 8)
			} else {
				cfg, ds = testConfig(task, qaFolder(t)), vqaData(t)
			}
			cfg.Epochs, cfg.InitLR = 40, 2e-3
			if task == "caption" {
				cfg.Epochs = 20
			}
			out := t.TempDir()
			sum, ms := runFinetune(t, cfg, ds, out, Options{})
			first, last := ms[0].Loss, ms[len(ms)-1].Loss
			t.Logf("%s: %d steps, loss %.3f -> %.3f", task, len(ms), first, last)
			if !(last < 0.5*first) {
				t.Errorf("%s loss did not halve: %.4f -> %.4f", task, first, last)
			}
			m, err := blip.LoadDir(sum.Model, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			m.Close()
		})
	}
}

// TestResumeEqualsUninterrupted: with augmentation and dropout on, a run
// stopped after steps 1 and 3 and resumed writes the same model, bit for
// bit, as one that ran through.
func TestResumeEqualsUninterrupted(t *testing.T) {
	dir := filepath.Join(tinyDir, "tiny-captioning")
	mk := func() *Config {
		c := testConfig("caption", dir)
		c.Epochs, c.Augment, c.Dropout, c.RandAugment, c.InitLR = 2, true, 0.1, true, 1e-3
		return c
	}
	ds := captionData(t, 8) // 2 steps per epoch
	a := t.TempDir()
	runFinetune(t, mk(), ds, a, Options{})
	b := t.TempDir()
	runFinetune(t, mk(), ds, b, Options{StopAfter: 1})
	if _, err := Run(mk(), cpu.New(), ds, Options{Out: b}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("a second run into a folder with a checkpoint: %v, want a refusal naming --resume", err)
	}
	runFinetune(t, mk(), ds, b, Options{Resume: true, StopAfter: 3})
	runFinetune(t, mk(), ds, b, Options{Resume: true})
	sameRun(t, a, b)
}

// TestLossScaleResume: an fp16 caption run started at a loss scale its
// gradients overflow (2^20, where the f16 operands of its backward
// products overflow) skips steps, halving the scale, until they
// fit, then applies them; stopped while skipping and again after, and
// resumed, it writes the model and metrics of an uninterrupted run bit for
// bit, which needs the checkpoint to restore the scale.
func TestLossScaleResume(t *testing.T) {
	dir := filepath.Join(tinyDir, "tiny-captioning")
	mk := func() *Config {
		c := testConfig("caption", dir)
		c.Epochs, c.InitLR, c.Precision, c.LossScale = 4, 1e-3, "fp16", 0x1p20
		return c
	}
	ds := captionData(t, 8) // 2 steps per epoch
	a := t.TempDir()
	_, ma := runFinetune(t, mk(), ds, a, Options{})
	firstApplied := slices.IndexFunc(ma, func(m Metrics) bool { return !m.Skipped })
	if len(ma) != 8 || !ma[0].Skipped || firstApplied < 1 || firstApplied >= len(ma)-1 {
		t.Fatalf("%d steps, first applied %d: want skips first, then applied steps", len(ma), firstApplied)
	}
	for i, m := range ma[:firstApplied] {
		if want := math.Ldexp(1, 20-i); m.LossScale != want || m.SkippedSteps != int64(i+1) {
			t.Fatalf("skipped step %d: scale %g, %d skipped, want %g and %d", m.Step, m.LossScale, m.SkippedSteps, want, i+1)
		}
	}
	t.Logf("%d steps skipped, then training at loss scale %g", firstApplied, ma[firstApplied].LossScale)
	b := t.TempDir()
	runFinetune(t, mk(), ds, b, Options{StopAfter: 1})
	runFinetune(t, mk(), ds, b, Options{Resume: true, StopAfter: int64(firstApplied) + 1})
	runFinetune(t, mk(), ds, b, Options{Resume: true})
	sameRun(t, a, b)
}

// TestRetrievalLossScale: the retrieval step seeds its backward with the
// loss scale too: at 2^126 its first steps overflow and are skipped, the
// scale halving, and the parameters stay.
func TestRetrievalLossScale(t *testing.T) {
	rc := retrievalConfig()
	rc.Precision, rc.LossScale = "fp16", 0x1p126
	out := t.TempDir()
	_, ms := runFinetune(t, rc, retrievalData(t), out, Options{StopAfter: 2})
	if len(ms) != 2 {
		t.Fatalf("%d steps, want 2", len(ms))
	}
	for i, m := range ms {
		if want := math.Ldexp(1, 126-i); !m.Skipped || m.LossScale != want || m.SkippedSteps != int64(i+1) {
			t.Errorf("step %d: skipped %v at scale %g (%d in all), want skipped at %g", m.Step, m.Skipped, m.LossScale, m.SkippedSteps, want)
		}
	}
	ck, err := safetensors.Open(filepath.Join(CheckpointDir(out), stateTensors))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	init, err := safetensors.Open(filepath.Join(rc.Init, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer init.Close()
	for _, name := range []string{"text_proj.weight", "vision_model.embeddings.patch_embedding.weight"} {
		a, err := init.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ck.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s moved in skipped steps", name)
		}
	}
}

// TestRefusals: a folder of the wrong kind and impossible settings are
// refused with the name of what is wrong.
func TestRefusals(t *testing.T) {
	cfg := testConfig("caption", filepath.Join(tinyDir, "tiny-retrieval"))
	_, err := Run(cfg, cpu.New(), captionData(t, 4), Options{Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "task caption needs") {
		t.Errorf("a retrieval folder for captioning: %v", err)
	}
	rc := retrievalConfig()
	rc.Init = filepath.Join(tinyDir, "tiny-captioning")
	_, err = Run(rc, cpu.New(), retrievalData(t), Options{Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "task retrieval needs a BlipForImageTextRetrieval folder") {
		t.Errorf("a captioning folder for retrieval: %v", err)
	}
	for _, c := range []struct{ js, want string }{
		{`{"task": "classify", "init": "x"}`, "task"},
		{`{"task": "retrieval", "init": "x", "queue_size": 8}`, "queue_size"},
		{`{"task": "retrieval", "init": "x", "alpha": 1.5}`, "alpha"},
		{`{"task": "retrieval", "init": "x", "init_temp": 0.9}`, "init_temp"},
		{`{"task": "retrieval", "init": "x", "itm_token": "sep"}`, "itm_token"},
		{`{"task": "caption"}`, "init"},
		{`{"task": "caption", "init": "x", "init_lr": 0}`, "init_lr"},
		{`{"task": "vqa", "init": "x", "answer_length": 2}`, "answer_length"},
		{`{"task": "caption", "init": "x", "bogus": 1}`, "bogus"},
		{`{"task": "caption", "init": "x", "precision": "bf16", "loss_scale": 1024}`, "loss_scale = 1024: applies to precision \"fp16\" only"},
		{`{"task": "caption", "init": "x", "precision": "fp16", "loss_scale": 1000}`, "loss_scale = 1000: must be 0 (2^16) or a power of two"},
		{`{"task": "caption", "init": "x", "precision": "fp16", "loss_scale": 0.5}`, "loss_scale = 0.5"},
	} {
		if _, err := Parse([]byte(c.js), "ft.json"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.js, err, c.want)
		}
	}
}

// retrievalData writes a BLIP retrieval annotation file (coco_karpathy
// style: image, caption, image_id) of the four tiny images with two
// captions each: eight pairs, two per image id.
func retrievalData(t *testing.T) *dataset.Pairs {
	t.Helper()
	captions := map[string][2]string{
		"astronaut.png": {"an astronaut holding a flag", "a man in a space suit"},
		"chelsea.png":   {"a cat sitting on a table", "a small cat looking up"},
		"coffee.png":    {"a cup of coffee on a table", "a white cup with coffee"},
		"rocket.jpg":    {"a rocket on the launch pad", "a rocket ready to launch"},
	}
	var entries []map[string]string
	for k := range 2 {
		for i, im := range tinyImages {
			entries = append(entries, map[string]string{"image": im, "caption": captions[im][k], "image_id": fmt.Sprintf("img%d", i)})
		}
	}
	p, err := dataset.ReadPairs(filepath.Join(tinyDir, "images"), dataset.JSONOptions{}, writeJSON(t, entries))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func retrievalConfig() *Config {
	c := testConfig("retrieval", filepath.Join(tinyDir, "tiny-retrieval"))
	c.QueueSize = 6 // not a multiple of the batch: the queues wrap mid-batch
	return c
}

// TestRetrievalBatches: captions of one image share an integer id, ids
// follow the order of first appearance, and rows start with [CLS].
func TestRetrievalBatches(t *testing.T) {
	ds := retrievalData(t)
	ids, err := ImageIDs(ds)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 4 || ids["img0"] != 0 || ids["img3"] != 3 {
		t.Fatalf("image ids %v, want img0..img3 -> 0..3", ids)
	}
	dir := filepath.Join(tinyDir, "tiny-retrieval")
	tok, err := tokenizer.LoadVocab(filepath.Join(dir, blip.VocabName))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := blip.LoadConfig(filepath.Join(dir, blip.ConfigName))
	if err != nil {
		t.Fatal(err)
	}
	c := retrievalConfig()
	c.BatchSize = 8
	b, err := NewBatcher(c, &cfg.VisionConfig, ds, tok, Tokens{Dec: tok.Dec, Pad: tok.Pad}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	batch, _, err := b.Next(dataset.Position{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for i, key := range batch.Keys {
		want := map[string]int64{"astronaut.png": 0, "chelsea.png": 1, "coffee.png": 2, "rocket.jpg": 3}[key]
		if batch.ImageIdx[i] != want {
			t.Errorf("sample %d (%s) has image id %d, want %d", i, key, batch.ImageIdx[i], want)
		}
		seen[batch.ImageIdx[i]]++
		if batch.IDs[i*c.MaxLength] != int32(tok.Cls) {
			t.Errorf("row %d starts with %d, want [CLS] %d", i, batch.IDs[i*c.MaxLength], tok.Cls)
		}
	}
	for id, n := range seen {
		if n != 2 {
			t.Errorf("image id %d appears %d times in the epoch, want 2", id, n)
		}
	}
}

// TestRetrievalAlphaRamp: alpha rises as alpha*i/len(loader) through the
// first epoch and stays at alpha after.
func TestRetrievalAlphaRamp(t *testing.T) {
	tr := &Trainer{Config: &Config{Alpha: 0.4}, State: State{EpochSteps: 4}}
	for _, c := range []struct {
		epoch, iter int
		want        float64
	}{{0, 0, 0}, {0, 1, 0.1}, {0, 3, 0.3}, {1, 0, 0.4}, {2, 3, 0.4}} {
		if got := tr.Alpha(c.epoch, c.iter); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Alpha(%d, %d) = %v, want %v", c.epoch, c.iter, got, c.want)
		}
	}
}

// TestRetrievalFinetuneLearns: a short fine-tune on four images with two
// captions each (repeated image ids) lowers ITC + ITM, and the written
// folder is a retrieval model whose weights moved.
func TestRetrievalFinetuneLearns(t *testing.T) {
	cfg := retrievalConfig()
	cfg.Epochs, cfg.InitLR = 12, 1e-3
	out := t.TempDir()
	sum, ms := runFinetune(t, cfg, retrievalData(t), out, Options{})
	if len(ms) != 24 {
		t.Fatalf("%d steps, want 24", len(ms))
	}
	mean := func(xs []Metrics, f func(Metrics) float64) float64 {
		var s float64
		for _, x := range xs {
			s += f(x)
		}
		return s / float64(len(xs))
	}
	loss := func(m Metrics) float64 { return m.Loss }
	first, last := mean(ms[:4], loss), mean(ms[len(ms)-4:], loss)
	t.Logf("loss %.4f -> %.4f (ita %.4f -> %.4f, itm %.4f -> %.4f), temp %.4f", first, last,
		mean(ms[:4], func(m Metrics) float64 { return m.ITA }), mean(ms[len(ms)-4:], func(m Metrics) float64 { return m.ITA }),
		mean(ms[:4], func(m Metrics) float64 { return m.ITM }), mean(ms[len(ms)-4:], func(m Metrics) float64 { return m.ITM }), ms[len(ms)-1].Temp)
	if !(last < 0.7*first) {
		t.Errorf("ITC + ITM did not fall by 30%%: %.4f -> %.4f", first, last)
	}
	for _, m := range ms {
		if math.Abs(m.Loss-(m.ITA+m.ITM)) > 1e-9 || m.ITA <= 0 || m.ITM <= 0 {
			t.Fatalf("step %d: loss %v, ita %v, itm %v", m.Step, m.Loss, m.ITA, m.ITM)
		}
	}
	if ms[0].Alpha != 0 || ms[1].Alpha != 0.2 || ms[2].Alpha != 0.4 {
		t.Errorf("alpha of the first steps %v %v %v, want 0 0.2 0.4", ms[0].Alpha, ms[1].Alpha, ms[2].Alpha)
	}
	m, err := blip.LoadDir(sum.Model, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Kind != blip.KindRetrieval {
		t.Fatalf("the fine-tuned folder is a %v", m.Kind)
	}
	init, err := blip.LoadDir(filepath.Join(tinyDir, "tiny-retrieval"), cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer init.Close()
	for _, name := range []string{"itm_head.weight", "text_proj.weight", "vision_model.embeddings.patch_embedding.weight"} {
		p, q := m.Params.Get(name), init.Params.Get(name)
		if p == nil || q == nil {
			t.Fatalf("no %s", name)
		}
		a, b := make([]float32, p.Numel()), make([]float32, q.Numel())
		p.Read(a)
		q.Read(b)
		if slicesEqual(a, b) {
			t.Errorf("%s did not change", name)
		}
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameTensors compares two safetensors files tensor by tensor, bit for bit.
func sameTensors(t *testing.T, x, y string) {
	t.Helper()
	fx, err := safetensors.Open(x)
	if err != nil {
		t.Fatal(err)
	}
	defer fx.Close()
	fy, err := safetensors.Open(y)
	if err != nil {
		t.Fatal(err)
	}
	defer fy.Close()
	nx, ny := fx.Names(), fy.Names()
	if strings.Join(nx, ",") != strings.Join(ny, ",") {
		t.Fatalf("%s and %s hold different tensors", x, y)
	}
	for _, n := range nx {
		a, err := fx.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		b, err := fy.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs", n)
		}
	}
}

// TestRetrievalResumeEqualsUninterrupted: with augmentation and dropout on
// and queues that wrap mid-batch, a retrieval run stopped after steps 1
// and 3 and resumed writes the same model, metrics and final checkpoint
// (momentum copies, feature and id queues, AdamW), bit for bit, as one
// that ran through.
func TestRetrievalResumeEqualsUninterrupted(t *testing.T) {
	mk := func() *Config {
		c := retrievalConfig()
		c.Epochs, c.Augment, c.Dropout, c.RandAugment, c.InitLR = 2, true, 0.1, true, 1e-3
		return c
	}
	ds := retrievalData(t) // 2 steps per epoch
	a := t.TempDir()
	runFinetune(t, mk(), ds, a, Options{})
	b := t.TempDir()
	runFinetune(t, mk(), ds, b, Options{StopAfter: 1})
	runFinetune(t, mk(), ds, b, Options{Resume: true, StopAfter: 3})
	runFinetune(t, mk(), ds, b, Options{Resume: true})
	sameTensors(t, filepath.Join(ModelDir(a), "model.safetensors"), filepath.Join(ModelDir(b), "model.safetensors"))
	sameTensors(t, filepath.Join(CheckpointDir(a), stateTensors), filepath.Join(CheckpointDir(b), stateTensors))
	la, _ := os.ReadFile(filepath.Join(a, "metrics.jsonl"))
	lb, _ := os.ReadFile(filepath.Join(b, "metrics.jsonl"))
	if !bytes.Equal(la, lb) {
		t.Errorf("metrics differ:\n%s\nresumed:\n%s", la, lb)
	}
	// The checkpoint holds what resuming needs.
	f, err := safetensors.Open(filepath.Join(CheckpointDir(b), stateTensors))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []string{"queue.image", "queue.text", queueIdx, "vision_model_m.post_layernorm.weight", "text_proj_m.weight", "temp"} {
		if _, ok := f.Info(n); !ok {
			t.Errorf("the checkpoint lacks %s", n)
		}
	}
	idx, err := f.Int64(queueIdx)
	if err != nil {
		t.Fatal(err)
	}
	var filled int
	for _, v := range idx {
		if v != idxQueueEmpty {
			filled++
		}
	}
	if filled != len(idx) {
		t.Errorf("id queue %v after 16 samples into %d slots", idx, len(idx))
	}
}

// TestRetrievalITMToken: itm_token "enc" feeds [ENC] first to the ITM rows
// only: the first step's ITC is the same as with [CLS], its ITM is not.
func TestRetrievalITMToken(t *testing.T) {
	first := func(token string) Metrics {
		c := retrievalConfig()
		c.ITMToken = token
		_, ms := runFinetune(t, c, retrievalData(t), t.TempDir(), Options{StopAfter: 1})
		return ms[0]
	}
	cls, enc := first("cls"), first("enc")
	if cls.ITA != enc.ITA {
		t.Errorf("ITC changed with the ITM token: %v vs %v", cls.ITA, enc.ITA)
	}
	if cls.ITM == enc.ITM {
		t.Errorf("ITM %v with [CLS] and with [ENC]: the token is not used", cls.ITM)
	}
}

// sameRun fails unless the runs in folders a (uninterrupted) and b
// (resumed) wrote the same model and metrics, byte for byte.
func sameRun(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(filepath.Join(ModelDir(a), "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(ModelDir(b), "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Error("the resumed run's model differs from the uninterrupted one")
	}
	la, _ := os.ReadFile(filepath.Join(a, "metrics.jsonl"))
	lb, _ := os.ReadFile(filepath.Join(b, "metrics.jsonl"))
	if !bytes.Equal(la, lb) {
		t.Errorf("metrics differ:\n%s\nresumed:\n%s", la, lb)
	}
}
