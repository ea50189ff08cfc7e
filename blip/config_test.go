package blip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyDir is the folder of the HF tiny reference models.
var tinyDir = filepath.Join("..", "testdata", "hf-blip-tiny")

func TestLoadTinyConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join(tinyDir, "tiny-captioning", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := TextConfig{
		VocabSize: 137, HiddenSize: 64, EncoderHiddenSize: 64, IntermediateSize: 128,
		ProjectionDim: 768, NumHiddenLayers: 2, NumAttentionHeads: 4, MaxPositionEmbeddings: 64,
		HiddenAct: "gelu", LayerNormEps: 1e-12, InitializerRange: 0.02,
		BosTokenID: 135, EosTokenID: 3, PadTokenID: 0, SepTokenID: 3,
		IsDecoder: true, UseCache: true, TieWordEmbeddings: true,
	}
	if c.TextConfig != want {
		t.Errorf("text config\n got %+v\nwant %+v", c.TextConfig, want)
	}
	wantV := VisionConfig{
		HiddenSize: 64, IntermediateSize: 128, ProjectionDim: 512, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumChannels: 3, ImageSize: 64, PatchSize: 16, HiddenAct: "gelu",
		LayerNormEps: 1e-5, InitializerRange: 1e-10,
	}
	if c.VisionConfig != wantV {
		t.Errorf("vision config\n got %+v\nwant %+v", c.VisionConfig, wantV)
	}
	if c.ProjectionDim != 32 || c.ImageTextHiddenSize != 32 || c.LabelSmoothing != 0 || !c.TieWordEmbeddings {
		t.Errorf("top level: %+v", c)
	}
	if c.Kind != KindCaptioning || c.Kind.String() != "BlipForConditionalGeneration" {
		t.Errorf("kind %v", c.Kind)
	}
	if c.VisionConfig.NumPositions() != 17 || c.VisionConfig.HeadDim() != 16 || c.TextConfig.HeadDim() != 16 {
		t.Errorf("derived sizes: %d positions, head dims %d/%d", c.VisionConfig.NumPositions(), c.VisionConfig.HeadDim(), c.TextConfig.HeadDim())
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	r, err := LoadConfig(filepath.Join(tinyDir, "tiny-retrieval", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindRetrieval {
		t.Errorf("retrieval kind %v", r.Kind)
	}
}

// TestDefaults checks that fields a file omits take transformers' class
// defaults (not the checkpoints' values).
func TestDefaults(t *testing.T) {
	c := DefaultConfig()
	tc, vc := c.TextConfig, c.VisionConfig
	if tc.VocabSize != 30524 || tc.HiddenSize != 768 || tc.NumAttentionHeads != 8 || tc.NumHiddenLayers != 12 ||
		tc.IntermediateSize != 3072 || tc.MaxPositionEmbeddings != 512 || tc.LayerNormEps != 1e-12 ||
		tc.BosTokenID != 30522 || tc.EosTokenID != 2 || tc.PadTokenID != 0 || tc.SepTokenID != 102 ||
		!tc.IsDecoder || tc.HiddenAct != "gelu" || tc.ProjectionDim != 768 {
		t.Errorf("text defaults %+v", tc)
	}
	if vc.HiddenSize != 768 || vc.NumAttentionHeads != 12 || vc.NumHiddenLayers != 12 || vc.ImageSize != 384 ||
		vc.PatchSize != 16 || vc.LayerNormEps != 1e-5 || vc.IntermediateSize != 3072 || vc.NumChannels != 3 {
		t.Errorf("vision defaults %+v", vc)
	}
	if c.ProjectionDim != 512 || c.ImageTextHiddenSize != 256 || c.LogitScaleInitValue != 2.6592 || c.Kind != KindUnknown {
		t.Errorf("top-level defaults %+v", c)
	}
	// A partial file: given fields win, the rest default, null means absent.
	p, err := ParseConfig([]byte(`{"text_config": {"num_attention_heads": 12, "pad_token_id": null},
		"vision_config": {"hidden_size": 1024, "num_attention_heads": 16, "image_size": 224}}`), "partial.json")
	if err != nil {
		t.Fatal(err)
	}
	if p.TextConfig.NumAttentionHeads != 12 || p.TextConfig.HiddenSize != 768 || p.TextConfig.PadTokenID != 0 {
		t.Errorf("partial text %+v", p.TextConfig)
	}
	// transformers forces the cross-attention width to the vision width.
	if p.TextConfig.EncoderHiddenSize != 1024 {
		t.Errorf("encoder_hidden_size %d, want the vision width 1024", p.TextConfig.EncoderHiddenSize)
	}
	if p.VisionConfig.NumPositions() != 197 {
		t.Errorf("positions %d", p.VisionConfig.NumPositions())
	}
}

func TestConfigOverridesAndWarnings(t *testing.T) {
	c, err := ParseConfig([]byte(`{
		"architectures": ["SomethingElse", "BlipForQuestionAnswering"],
		"text_config": {"encoder_hidden_size": 999, "hidden_size": 64, "num_attention_heads": 4},
		"text_config_dict": {"hidden_size": 128},
		"vision_config": {"hidden_size": 32, "num_attention_heads": 4},
		"tie_word_embeddings": false,
		"torch_dtype": "float16"}`), "c.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.TextConfig.HiddenSize != 128 {
		t.Errorf("text_config_dict should override text_config: hidden %d", c.TextConfig.HiddenSize)
	}
	if c.TextConfig.EncoderHiddenSize != 32 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "encoder_hidden_size") {
		t.Errorf("encoder width %d, warnings %v", c.TextConfig.EncoderHiddenSize, c.Warnings)
	}
	// The text config keeps its own default (true), as in transformers.
	if c.Kind != KindQA || c.TieWordEmbeddings || !c.TextConfig.TieWordEmbeddings || c.DType != "float16" {
		t.Errorf("kind %v tie %v/%v dtype %q", c.Kind, c.TieWordEmbeddings, c.TextConfig.TieWordEmbeddings, c.DType)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		json string
		want []string
	}{
		"not json":     {`{"text_config": `, []string{"bad.json", "not a JSON object"}},
		"array":        {`[1, 2]`, []string{"not a JSON object"}},
		"trailing":     {`{} {}`, []string{"trailing"}},
		"not blip":     {`{"model_type": "bert"}`, []string{"bad.json", `"bert"`, "not a BLIP model"}},
		"heads":        {`{"text_config": {"hidden_size": 64, "num_attention_heads": 5}}`, []string{"bad.json", "text_config.num_attention_heads", "5 does not divide hidden_size 64"}},
		"vision heads": {`{"vision_config": {"hidden_size": 100, "num_attention_heads": 12}}`, []string{"vision_config.num_attention_heads"}},
		"patch":        {`{"vision_config": {"image_size": 100, "patch_size": 16}}`, []string{"vision_config.image_size", "not a multiple of patch_size 16"}},
		"zero layers":  {`{"vision_config": {"num_hidden_layers": 0}}`, []string{"vision_config.num_hidden_layers", "positive"}},
		"negative":     {`{"text_config": {"vocab_size": -3}}`, []string{"text_config.vocab_size"}},
		"string int":   {`{"text_config": {"hidden_size": "768"}}`, []string{"text_config.hidden_size", "not an integer"}},
		"float int":    {`{"vision_config": {"patch_size": 16.5}}`, []string{"vision_config.patch_size", "not an integer"}},
		"bad bool":     {`{"text_config": {"is_decoder": 1}}`, []string{"text_config.is_decoder"}},
		"bad float":    {`{"text_config": {"layer_norm_eps": "small"}}`, []string{"text_config.layer_norm_eps"}},
		"zero eps":     {`{"vision_config": {"layer_norm_eps": 0}}`, []string{"vision_config.layer_norm_eps"}},
		"activation":   {`{"text_config": {"hidden_act": "gleu"}}`, []string{"text_config.hidden_act", "gleu"}},
		"token id":     {`{"text_config": {"vocab_size": 100}}`, []string{"text_config.bos_token_id", "30522"}},
		"sub not obj":  {`{"text_config": 3}`, []string{"text_config", "not a JSON object"}},
		"archs":        {`{"architectures": "BlipModel"}`, []string{"architectures", "list of strings"}},
		"smoothing":    {`{"label_smoothing": 1.5}`, []string{"label_smoothing"}},
		"projection":   {`{"image_text_hidden_size": 0}`, []string{"image_text_hidden_size"}},
		"several at once": {`{"text_config": {"hidden_size": 10, "num_attention_heads": 3}, "vision_config": {"patch_size": 0}}`,
			[]string{"text_config.num_attention_heads", "vision_config.patch_size"}},
	}
	for name, c := range cases {
		_, err := ParseConfig([]byte(c.json), "bad.json")
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", name, err, w)
			}
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestParseModelKind(t *testing.T) {
	for s, want := range map[string]ModelKind{
		"BlipForImageTextRetrieval": KindRetrieval, "caption": KindCaptioning, "VQA": KindQA,
		"itm": KindRetrieval, "BlipModel": KindContrastive,
	} {
		if k, ok := ParseModelKind(s); !ok || k != want {
			t.Errorf("ParseModelKind(%q) = %v, %v", s, k, ok)
		}
	}
	if _, ok := ParseModelKind("bert"); ok {
		t.Error("bert parsed")
	}
	if KindUnknown.String() != "unknown" {
		t.Error(KindUnknown.String())
	}
}

// TestRealConfigShapes parses a config shaped like Salesforce's released
// ones (base captioning), whose heads differ from the class default.
func TestRealConfigShapes(t *testing.T) {
	js := `{"architectures": ["BlipForConditionalGeneration"], "model_type": "blip",
	  "projection_dim": 512, "image_text_hidden_size": 256,
	  "text_config": {"num_attention_heads": 12, "vocab_size": 30524, "hidden_size": 768,
	    "encoder_hidden_size": 768, "bos_token_id": 30522, "sep_token_id": 102, "pad_token_id": 0,
	    "max_position_embeddings": 512, "num_hidden_layers": 12, "intermediate_size": 3072},
	  "vision_config": {"image_size": 384, "patch_size": 16, "hidden_size": 768, "num_hidden_layers": 12,
	    "num_attention_heads": 12, "intermediate_size": 3072, "layer_norm_eps": 1e-5}}`
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := ExpectedTensors(c, c.Kind)
	if err != nil {
		t.Fatal(err)
	}
	// ViT: 4 embedding + 12 per layer x 12 + 2; text: 4 + 26 per layer x 12
	// (with cross-attention); head: 6.
	if want := 4 + 12*12 + 2 + 4 + 26*12 + 6; len(specs) != want {
		t.Errorf("%d parameters, want %d", len(specs), want)
	}
	byName := map[string][]int{}
	for _, s := range specs {
		byName[s.Name] = s.Shape
	}
	for name, shape := range map[string][]int{
		"vision_model.embeddings.position_embedding":                       {1, 577, 768},
		"vision_model.encoder.layers.11.self_attn.qkv.weight":              {2304, 768},
		"text_decoder.bert.encoder.layer.0.crossattention.self.key.weight": {768, 768},
		"text_decoder.cls.predictions.decoder.weight":                      {30524, 768},
	} {
		if !equalShape(byName[name], shape) {
			t.Errorf("%s: %v, want %v", name, byName[name], shape)
		}
	}
}
