package blip

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blip/blip/torchpt"
	"blip/data/safetensors"
)

var (
	origPth    = filepath.Join(tinyDir, "tiny-captioning-original", "model_tiny_caption.pth")
	origConfig = filepath.Join(tinyDir, "tiny-captioning-original", "hf_config.json")
	origVocab  = filepath.Join(tinyDir, "tiny-captioning-original", "vocab.txt")
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvertTinyOriginal converts the original-format tiny checkpoint and
// checks that every tensor is bit-identical to transformers' own save.
func TestConvertTinyOriginal(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hf")
	rep, err := ConvertOriginal(origPth, out, ConvertOptions{
		Config: readFile(t, origConfig), ConfigPath: origConfig, VocabPath: origVocab,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != KindCaptioning || rep.Interpolated {
		t.Errorf("report %+v", rep)
	}
	if !slices.ContainsFunc(rep.Dropped, func(s string) bool { return strings.HasPrefix(s, DecoderWeightName+": tied") }) {
		t.Errorf("dropped %v: the tied decoder weight should be", rep.Dropped)
	}
	got, err := safetensors.Open(filepath.Join(out, SafetensorsName))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := safetensors.Open(filepath.Join(tinyDir, "tiny-captioning", SafetensorsName))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if !slices.Equal(got.Names(), want.Names()) {
		t.Fatalf("names differ:\n got %v\nwant %v", got.Names(), want.Names())
	}
	if !slices.Equal(rep.Written, want.Names()) {
		t.Errorf("report lists %d written, want %d", len(rep.Written), len(want.Names()))
	}
	for _, n := range want.Names() {
		gi, _ := got.Info(n)
		wi, _ := want.Info(n)
		if gi.DType != wi.DType || !slices.Equal(gi.Shape, wi.Shape) {
			t.Errorf("%s: %s%v, want %s%v", n, gi.DType, gi.Shape, wi.DType, wi.Shape)
		}
		gr, _ := got.Raw(n)
		wr, _ := want.Raw(n)
		if !bytes.Equal(gr, wr) {
			t.Errorf("%s: bytes differ", n)
		}
	}
	if md := got.Metadata(); md["format"] != "pt" {
		t.Errorf("metadata %v", md)
	}
	if !bytes.Equal(readFile(t, filepath.Join(out, ConfigName)), readFile(t, origConfig)) ||
		!bytes.Equal(readFile(t, filepath.Join(out, VocabName)), readFile(t, origVocab)) {
		t.Error("config.json or vocab.txt not copied verbatim")
	}
	f, err := OpenFolder(out)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, f)
	f.Close()
	// No temporary folder is left behind.
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("output parent holds %d entries", len(entries))
	}
}

// pretrainLike rewrites the tiny original as a pretraining checkpoint
// would hold it: momentum copies, queues, temperature, a text encoder,
// projection and ITM heads, position_ids buffers and the tied LM bias.
func pretrainLike(t *testing.T, edit func(name string, e *torchpt.Entry) bool) string {
	t.Helper()
	a, err := torchpt.Open(origPth)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		t.Fatal(err)
	}
	var entries []torchpt.Entry
	add := func(name string, shape []int64, data []float32) {
		e := torchpt.Entry{Name: name, Shape: shape, Data: data}
		if edit == nil || edit(name, &e) {
			entries = append(entries, e)
		}
	}
	for _, n := range sd.Names() {
		v, err := sd.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := sd.Info(n)
		add(n, info.Shape, v)
		if strings.HasPrefix(n, "visual_encoder.") {
			add(strings.Replace(n, "visual_encoder.", "visual_encoder_m.", 1), info.Shape, v)
		}
		if rest, ok := strings.CutPrefix(n, "text_decoder.bert."); ok {
			add("text_encoder."+rest, info.Shape, v)
			add("text_encoder_m."+rest, info.Shape, v)
		}
		if n == decoderBiasName {
			add(decoderBiasTieName, info.Shape, v)
		}
	}
	add("text_decoder.bert.embeddings.position_ids", []int64{1, 64}, make([]float32, 64))
	add("vision_proj.weight", []int64{32, 64}, make([]float32, 32*64))
	add("vision_proj.bias", []int64{32}, make([]float32, 32))
	add("vision_proj_m.weight", []int64{32, 64}, make([]float32, 32*64))
	add("itm_head.weight", []int64{2, 64}, make([]float32, 128))
	add("image_queue", []int64{32, 8}, make([]float32, 256))
	add("text_queue", []int64{32, 8}, make([]float32, 256))
	add("ptr_queue", []int64{1}, []float32{0})
	add("temp", []int64{}, []float32{0.07})
	path := filepath.Join(t.TempDir(), "pretrain.pth")
	if err := torchpt.WriteFile(path, entries, "model"); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConvertDropsTrainingState(t *testing.T) {
	src := pretrainLike(t, nil)
	out := filepath.Join(t.TempDir(), "hf")
	rep, err := ConvertOriginal(src, out, ConvertOptions{Config: readFile(t, origConfig)})
	if err != nil {
		t.Fatal(err)
	}
	dropped := strings.Join(rep.Dropped, "\n")
	for _, w := range []string{"visual_encoder_m.blocks.0.attn.qkv.weight: pretraining", "image_queue: pretraining",
		"temp: pretraining", "text_encoder.embeddings.word_embeddings.weight: module text_encoder",
		"itm_head.weight: module itm_head", "position_ids: buffer", decoderBiasTieName + ": tied"} {
		if !strings.Contains(dropped, w) {
			t.Errorf("dropped list lacks %q", w)
		}
	}
	if _, err := os.Stat(filepath.Join(out, VocabName)); err == nil {
		t.Error("vocab.txt written without VocabPath")
	}
	// The same checkpoint as a retrieval model keeps the encoder and heads,
	// but this one lacks text_proj.
	cfg := bytes.Replace(readFile(t, origConfig), []byte("BlipForConditionalGeneration"), []byte("BlipForImageTextRetrieval"), 1)
	_, err = ConvertOriginal(src, filepath.Join(t.TempDir(), "itm"), ConvertOptions{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), `missing "text_proj.weight"`) || !strings.Contains(err.Error(), "itm_head.bias") {
		t.Errorf("retrieval conversion: %v", err)
	}
	// Kind overrides the config's architecture.
	_, err = ConvertOriginal(src, filepath.Join(t.TempDir(), "vqa"), ConvertOptions{Config: readFile(t, origConfig), Kind: KindQA})
	if err != nil {
		t.Errorf("VQA conversion: %v", err)
	}
}

func TestConvertErrors(t *testing.T) {
	cfg := readFile(t, origConfig)
	tmp := t.TempDir()
	// Output folder not empty.
	busy := filepath.Join(tmp, "busy")
	os.MkdirAll(busy, 0o755)
	os.WriteFile(filepath.Join(busy, "keep.txt"), []byte("x"), 0o644)
	if _, err := ConvertOriginal(origPth, busy, ConvertOptions{Config: cfg}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("busy output: %v", err)
	}
	if _, err := ConvertOriginal(origPth, busy, ConvertOptions{Config: cfg, Overwrite: true}); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	if _, err := os.Stat(filepath.Join(busy, "keep.txt")); err == nil {
		t.Error("overwrite kept the old folder's files")
	}
	// An empty existing folder is fine.
	empty := filepath.Join(tmp, "empty")
	os.MkdirAll(empty, 0o755)
	if _, err := ConvertOriginal(origPth, empty, ConvertOptions{Config: cfg}); err != nil {
		t.Errorf("empty output folder: %v", err)
	}

	cases := []struct {
		name string
		src  string
		opts ConvertOptions
		want []string
	}{
		{"no config", origPth, ConvertOptions{}, []string{"config.json", "required"}},
		{"no architecture", origPth, ConvertOptions{Config: []byte(`{"text_config": {"vocab_size": 137, "bos_token_id": 1}}`), ConfigPath: "c.json"},
			[]string{"c.json", "no BLIP architecture"}},
		{"config mismatch", origPth, ConvertOptions{Config: bytes.Replace(cfg, []byte(`"intermediate_size": 128,
    "is_decoder"`), []byte(`"intermediate_size": 256,
    "is_decoder"`), 1)},
			[]string{"text_decoder.bert.encoder.layer.0.intermediate.dense.weight", "[128 64]", "[256 64]"}},
		{"missing vocab", origPth, ConvertOptions{Config: cfg, VocabPath: filepath.Join(tmp, "nope.txt")}, []string{"vocabulary", "nope.txt"}},
		{"not torch", origConfig, ConvertOptions{Config: cfg}, []string{"hf_config.json", "not a PyTorch checkpoint"}},
		{"unknown vit key", pretrainLike(t, func(n string, e *torchpt.Entry) bool {
			if n == "visual_encoder.norm.bias" {
				e.Name = "visual_encoder.fc_norm.bias"
			}
			return true
		}), ConvertOptions{Config: cfg}, []string{`"visual_encoder.fc_norm.bias" has no HF counterpart`, `missing "visual_encoder.norm.bias"`}},
		{"untied decoder", pretrainLike(t, func(n string, e *torchpt.Entry) bool {
			if n == DecoderWeightName {
				e.Data = make([]float32, len(e.Data))
			}
			return true
		}), ConvertOptions{Config: cfg}, []string{DecoderWeightName, "differs", "ties them"}},
		{"unexpected text key", pretrainLike(t, func(n string, e *torchpt.Entry) bool {
			if n == "text_decoder.cls.predictions.bias" {
				e.Name = "text_decoder.cls.extra"
			}
			return true
		}), ConvertOptions{Config: cfg}, []string{`unexpected entry "text_decoder.cls.extra"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := ConvertOriginal(c.src, out, c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a failed conversion left an output folder")
			}
			entries, _ := os.ReadDir(filepath.Dir(out))
			if len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// TestConvertInterpolates converts the 64px tiny checkpoint for 128px
// images: the 4x4 position grid is resized to 8x8.
func TestConvertInterpolates(t *testing.T) {
	cfg := bytes.Replace(readFile(t, origConfig), []byte(`"image_size": 64`), []byte(`"image_size": 128`), 1)
	out := filepath.Join(t.TempDir(), "hf128")
	rep, err := ConvertOriginal(origPth, out, ConvertOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interpolated {
		t.Error("not reported as interpolated")
	}
	f, err := OpenFolder(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pos, err := f.Weights.Require("vision_model.embeddings.position_embedding", 1, 65, 64)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := OpenCheckpoint(filepath.Join(tinyDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	old, _ := ref.Float32("vision_model.embeddings.position_embedding")
	if !slices.Equal(pos[:64], old[:64]) {
		t.Error("the [CLS] row changed")
	}
}

func TestBicubicTaps(t *testing.T) {
	// torch: F.interpolate([0, 1] as 1x2, size 4, bicubic, align_corners=False).
	idx, w := bicubicTaps(2, 4)
	in := []float64{0, 1}
	got := make([]float64, 4)
	for o := range 4 {
		for k := range 4 {
			got[o] += w[o][k] * in[idx[o][k]]
		}
	}
	want := []float64{-0.10546875, 0.2265625, 0.7734375, 1.10546875}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("upsampled %v, want %v", got, want)
			break
		}
	}
	// Weights sum to 1 (constants are preserved).
	for o := range w {
		if s := w[o][0] + w[o][1] + w[o][2] + w[o][3]; math.Abs(s-1) > 1e-12 {
			t.Errorf("weights of %d sum to %v", o, s)
		}
	}
}

func TestInterpolatePosEmbed(t *testing.T) {
	// Same size: exact copy.
	src := []float32{9, 1, 2, 3, 4} // [CLS] + 2x2 grid, 1 channel
	out, err := interpolatePosEmbed(src, 5, 5, 1)
	if err != nil || !slices.Equal(out, src) {
		t.Errorf("identity: %v, %v", out, err)
	}
	// Separable: a(y)*b(x) resizes to resize(a)(y)*resize(b)(x).
	a, b := []float64{1, 3}, []float64{2, -1}
	grid := []float32{9}
	for y := range 2 {
		for x := range 2 {
			grid = append(grid, float32(a[y]*b[x]))
		}
	}
	out, err = interpolatePosEmbed(grid, 5, 17, 1)
	if err != nil {
		t.Fatal(err)
	}
	idx, w := bicubicTaps(2, 4)
	resize := func(v []float64) []float64 {
		r := make([]float64, 4)
		for o := range 4 {
			for k := range 4 {
				r[o] += w[o][k] * v[idx[o][k]]
			}
		}
		return r
	}
	ra, rb := resize(a), resize(b)
	for y := range 4 {
		for x := range 4 {
			if got, want := float64(out[1+y*4+x]), ra[y]*rb[x]; math.Abs(got-want) > 1e-5 {
				t.Errorf("(%d,%d) = %v, want %v", y, x, got, want)
			}
		}
	}
	if out[0] != 9 {
		t.Error("[CLS] row changed")
	}
	if _, err := interpolatePosEmbed(make([]float32, 6), 6, 17, 1); err == nil {
		t.Error("non-square grid accepted")
	}
}

func TestOriginalToHF(t *testing.T) {
	for orig, hf := range map[string]string{
		"visual_encoder.cls_token":                                 "vision_model.embeddings.class_embedding",
		"visual_encoder.pos_embed":                                 "vision_model.embeddings.position_embedding",
		"visual_encoder.patch_embed.proj.weight":                   "vision_model.embeddings.patch_embedding.weight",
		"visual_encoder.norm.bias":                                 "vision_model.post_layernorm.bias",
		"visual_encoder.blocks.11.norm1.weight":                    "vision_model.encoder.layers.11.layer_norm1.weight",
		"visual_encoder.blocks.3.norm2.bias":                       "vision_model.encoder.layers.3.layer_norm2.bias",
		"visual_encoder.blocks.0.attn.qkv.weight":                  "vision_model.encoder.layers.0.self_attn.qkv.weight",
		"visual_encoder.blocks.0.attn.proj.bias":                   "vision_model.encoder.layers.0.self_attn.projection.bias",
		"visual_encoder.blocks.23.mlp.fc2.weight":                  "vision_model.encoder.layers.23.mlp.fc2.weight",
		"text_encoder.encoder.layer.0.attention.self.query.weight": "text_encoder.encoder.layer.0.attention.self.query.weight",
		"itm_head.weight":                                          "itm_head.weight",
	} {
		got, ok := OriginalToHF(orig)
		if !ok || got != hf {
			t.Errorf("OriginalToHF(%q) = %q, %v; want %q", orig, got, ok, hf)
		}
		if back := hfToOriginal(hf); back != orig {
			t.Errorf("hfToOriginal(%q) = %q, want %q", hf, back, orig)
		}
	}
	if _, ok := OriginalToHF("visual_encoder.head.weight"); ok {
		t.Error("unknown ViT key mapped")
	}
	for _, n := range []string{"visual_encoder_m.pos_embed", "text_proj_m.weight", "idx_queue", "temp"} {
		if !trainingOnly(n) {
			t.Errorf("%s not recognised as pretraining state", n)
		}
	}
	if trainingOnly("text_encoder.embeddings.word_embeddings.weight") {
		t.Error("text_encoder is not pretraining-only")
	}
}

// TestConvertUntied keeps the LM head's own weight when the text config
// does not tie it, and a folder without it then fails to open.
func TestConvertUntied(t *testing.T) {
	cfg := bytes.Replace(readFile(t, origConfig), []byte(`"tie_word_embeddings": true,
    "use_cache"`), []byte(`"tie_word_embeddings": false,
    "use_cache"`), 1)
	if bytes.Equal(cfg, readFile(t, origConfig)) {
		t.Fatal("test config edit did not apply")
	}
	out := filepath.Join(t.TempDir(), "untied")
	rep, err := ConvertOriginal(origPth, out, ConvertOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Written, DecoderWeightName) {
		t.Error("untied decoder weight not written")
	}
	f, err := OpenFolder(out)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, f)
	f.Close()

	dir := copyDir(t, filepath.Join(tinyDir, "tiny-captioning"))
	os.WriteFile(filepath.Join(dir, ConfigName), cfg, 0o644)
	if _, err := OpenFolder(dir); err == nil || !strings.Contains(err.Error(), DecoderWeightName) {
		t.Errorf("untied folder without the decoder weight: %v", err)
	}
}

func TestOpenCheckpointFiles(t *testing.T) {
	c, err := OpenCheckpoint(origPth)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Has("visual_encoder.blocks.0.attn.qkv.weight") || c.Format() != "pytorch" {
		t.Errorf("original checkpoint: %v", c.Names())
	}
	if KindFromNames(c.Names()) != KindUnknown {
		t.Error("original names taken for an HF class")
	}
	dir := t.TempDir()
	writeIndex(t, filepath.Join(dir, "mixed.json"), map[string]string{"a": "x.safetensors", "b": "y.bin"})
	if _, err := OpenCheckpoint(filepath.Join(dir, "mixed.json")); err == nil || !strings.Contains(err.Error(), "mixes") {
		t.Errorf("mixed index: %v", err)
	}
	writeIndex(t, filepath.Join(dir, "escape.json"), map[string]string{"a": "../y.bin"})
	if _, err := OpenCheckpoint(filepath.Join(dir, "escape.json")); err == nil || !strings.Contains(err.Error(), "relative") {
		t.Errorf("escaping shard path: %v", err)
	}
	if _, err := OpenCheckpoint(filepath.Join(dir, "none")); err == nil {
		t.Error("missing path opened")
	}
}
