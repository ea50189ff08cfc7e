package blip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// TextConfig is the "text_config" of an HF BLIP config.json (transformers'
// BlipTextConfig): the BERT-style text encoder/decoder (MED).
type TextConfig struct {
	VocabSize                 int
	HiddenSize                int
	EncoderHiddenSize         int // width of the image states cross-attention reads (= VisionConfig.HiddenSize)
	IntermediateSize          int
	ProjectionDim             int
	NumHiddenLayers           int
	NumAttentionHeads         int
	MaxPositionEmbeddings     int
	HiddenAct                 string
	LayerNormEps              float64
	HiddenDropoutProb         float64
	AttentionProbsDropoutProb float64
	InitializerRange          float64
	BosTokenID                int // [DEC], the first decoder token
	EosTokenID                int // declared eos; generation stops on SepTokenID
	PadTokenID                int
	SepTokenID                int  // [SEP]: end of a caption
	IsDecoder                 bool // layers have cross-attention
	UseCache                  bool
	LabelSmoothing            float64
	// TieWordEmbeddings says the LM head's decoder weight is the word
	// embedding matrix. transformers ties by the text config's flag
	// (get_text_config), so this one, not BlipConfig's, decides.
	TieWordEmbeddings bool
}

// VisionConfig is the "vision_config" of an HF BLIP config.json
// (transformers' BlipVisionConfig): the ViT image encoder.
type VisionConfig struct {
	HiddenSize        int
	IntermediateSize  int
	ProjectionDim     int
	NumHiddenLayers   int
	NumAttentionHeads int
	NumChannels       int
	ImageSize         int
	PatchSize         int
	HiddenAct         string
	LayerNormEps      float64
	AttentionDropout  float64
	Dropout           float64
	InitializerRange  float64
}

// NumPatches returns (ImageSize/PatchSize)^2.
func (v *VisionConfig) NumPatches() int {
	if v.PatchSize <= 0 {
		return 0
	}
	g := v.ImageSize / v.PatchSize
	return g * g
}

// NumPositions returns the length of the image token sequence: the patches
// plus the [CLS] token.
func (v *VisionConfig) NumPositions() int { return v.NumPatches() + 1 }

// HeadDim returns HiddenSize / NumAttentionHeads.
func (v *VisionConfig) HeadDim() int { return v.HiddenSize / max(v.NumAttentionHeads, 1) }

// HeadDim returns HiddenSize / NumAttentionHeads.
func (t *TextConfig) HeadDim() int { return t.HiddenSize / max(t.NumAttentionHeads, 1) }

// BlipConfig is an HF BLIP config.json (transformers' BlipConfig).
type BlipConfig struct {
	TextConfig   TextConfig
	VisionConfig VisionConfig
	// ProjectionDim is the width of BlipModel's contrastive projections.
	ProjectionDim int
	// ImageTextHiddenSize is the width of the retrieval model's ITC
	// projections (vision_proj, text_proj).
	ImageTextHiddenSize int
	LogitScaleInitValue float64
	LabelSmoothing      float64 // top-level copy, read by transformers 5's captioning loss
	InitializerFactor   float64
	InitializerRange    float64
	TieWordEmbeddings   bool
	ModelType           string   // "blip"
	Architectures       []string // e.g. ["BlipForConditionalGeneration"]
	DType               string   // "dtype" or "torch_dtype", informational
	TransformersVersion string
	// Kind is the model class named by Architectures (KindUnknown when the
	// file names none; OpenFolder then infers it from the weights).
	Kind ModelKind
	// Path is the file the config was read from ("" when parsed from bytes).
	Path string
	// Warnings lists values the file states that transformers overrides.
	Warnings []string
}

// DefaultConfig returns the configuration transformers builds from an empty
// config.json: its class defaults. Checkpoints differ from these (e.g. text
// heads 8 vs 12), which is why every field is read from the file.
func DefaultConfig() *BlipConfig {
	c, err := ParseConfig([]byte("{}"), "")
	if err != nil {
		panic(err) // the defaults are valid by construction
	}
	return c
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (*BlipConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses and validates the bytes of a config.json; path names the
// file in errors. Fields the file omits take transformers' class defaults.
func ParseConfig(data []byte, path string) (*BlipConfig, error) {
	name := path
	if name == "" {
		name = "config.json"
	}
	top, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %v", name, err)
	}
	r := &fieldReader{file: name}
	c := &BlipConfig{Path: path}
	c.ModelType = top.str(r, "model_type", "blip")
	if c.ModelType != "blip" {
		return nil, fmt.Errorf("config: %s: model_type is %q, not \"blip\": not a BLIP model", name, c.ModelType)
	}
	c.Architectures = top.strs(r, "architectures")
	c.ProjectionDim = top.int(r, "projection_dim", 512)
	c.ImageTextHiddenSize = top.int(r, "image_text_hidden_size", 256)
	c.LogitScaleInitValue = top.float(r, "logit_scale_init_value", 2.6592)
	c.LabelSmoothing = top.float(r, "label_smoothing", 0)
	c.InitializerFactor = top.float(r, "initializer_factor", 1)
	c.InitializerRange = top.float(r, "initializer_range", 0.02)
	c.TieWordEmbeddings = top.bool(r, "tie_word_embeddings", true)
	c.DType = top.str(r, "dtype", top.str(r, "torch_dtype", ""))
	c.TransformersVersion = top.str(r, "transformers_version", "")

	text := top.sub(r, "text_config", "text_config_dict")
	vision := top.sub(r, "vision_config", "vision_config_dict")
	c.VisionConfig = parseVision(r, vision)
	c.TextConfig = parseText(r, text)

	// transformers' BlipConfig sets the text model's cross-attention input
	// width to the vision width whatever the file says; do the same.
	if v := c.VisionConfig.HiddenSize; c.TextConfig.EncoderHiddenSize != v {
		if text.has("encoder_hidden_size") {
			c.Warnings = append(c.Warnings, fmt.Sprintf(
				"%s: text_config.encoder_hidden_size %d replaced by vision_config.hidden_size %d, as transformers does",
				name, c.TextConfig.EncoderHiddenSize, v))
		}
		c.TextConfig.EncoderHiddenSize = v
	}
	c.Kind = kindFromArchitectures(c.Architectures)
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseText reads a text_config object.
func parseText(r *fieldReader, o object) TextConfig {
	return TextConfig{
		VocabSize:                 o.int(r, "vocab_size", 30524),
		HiddenSize:                o.int(r, "hidden_size", 768),
		EncoderHiddenSize:         o.int(r, "encoder_hidden_size", 768),
		IntermediateSize:          o.int(r, "intermediate_size", 3072),
		ProjectionDim:             o.int(r, "projection_dim", 768),
		NumHiddenLayers:           o.int(r, "num_hidden_layers", 12),
		NumAttentionHeads:         o.int(r, "num_attention_heads", 8),
		MaxPositionEmbeddings:     o.int(r, "max_position_embeddings", 512),
		HiddenAct:                 o.str(r, "hidden_act", "gelu"),
		LayerNormEps:              o.float(r, "layer_norm_eps", 1e-12),
		HiddenDropoutProb:         o.float(r, "hidden_dropout_prob", 0),
		AttentionProbsDropoutProb: o.float(r, "attention_probs_dropout_prob", 0),
		InitializerRange:          o.float(r, "initializer_range", 0.02),
		BosTokenID:                o.int(r, "bos_token_id", 30522),
		EosTokenID:                o.int(r, "eos_token_id", 2),
		PadTokenID:                o.int(r, "pad_token_id", 0),
		SepTokenID:                o.int(r, "sep_token_id", 102),
		IsDecoder:                 o.bool(r, "is_decoder", true),
		UseCache:                  o.bool(r, "use_cache", true),
		LabelSmoothing:            o.float(r, "label_smoothing", 0),
		TieWordEmbeddings:         o.bool(r, "tie_word_embeddings", true),
	}
}

// parseVision reads a vision_config object.
func parseVision(r *fieldReader, o object) VisionConfig {
	return VisionConfig{
		HiddenSize:        o.int(r, "hidden_size", 768),
		IntermediateSize:  o.int(r, "intermediate_size", 3072),
		ProjectionDim:     o.int(r, "projection_dim", 512),
		NumHiddenLayers:   o.int(r, "num_hidden_layers", 12),
		NumAttentionHeads: o.int(r, "num_attention_heads", 12),
		NumChannels:       o.int(r, "num_channels", 3),
		ImageSize:         o.int(r, "image_size", 384),
		PatchSize:         o.int(r, "patch_size", 16),
		HiddenAct:         o.str(r, "hidden_act", "gelu"),
		LayerNormEps:      o.float(r, "layer_norm_eps", 1e-5),
		AttentionDropout:  o.float(r, "attention_dropout", 0),
		Dropout:           o.float(r, "dropout", 0),
		InitializerRange:  o.float(r, "initializer_range", 1e-10),
	}
}

// object is a decoded JSON object; path is its location for messages
// ("" for the top level, "text_config." for a sub-object).
type object struct {
	path   string
	fields map[string]json.RawMessage
}

// fieldReader collects type errors so that one pass reports them all.
type fieldReader struct {
	file string
	errs []error
}

func (r *fieldReader) errorf(field, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("config: %s: %s: %s", r.file, field, fmt.Sprintf(format, args...)))
}

// decodeObject decodes a JSON object, rejecting anything else.
func decodeObject(data []byte) (object, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return object{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return object{}, errors.New("trailing data after the JSON object")
	}
	if m == nil {
		return object{}, errors.New("not a JSON object (null)")
	}
	return object{fields: m}, nil
}

// raw returns a field's JSON, treating null like absence (transformers then
// keeps the default too, for the fields read here).
func (o object) raw(key string) (json.RawMessage, bool) {
	v, ok := o.fields[key]
	v = bytes.TrimSpace(v)
	if !ok || len(v) == 0 || string(v) == "null" {
		return nil, false
	}
	return v, true
}

func (o object) has(key string) bool { _, ok := o.raw(key); return ok }

func (o object) int(r *fieldReader, key string, def int) int {
	v, ok := o.raw(key)
	if !ok {
		return def
	}
	// json.Number would also accept a quoted number; require a bare one.
	var n json.Number
	if c := v[0]; (c == '-' || c >= '0' && c <= '9') && json.Unmarshal(v, &n) == nil {
		if i, err := n.Int64(); err == nil && int64(int(i)) == i {
			return int(i)
		}
	}
	r.errorf(o.path+key, "%s is not an integer", v)
	return def
}

func (o object) float(r *fieldReader, key string, def float64) float64 {
	v, ok := o.raw(key)
	if !ok {
		return def
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		r.errorf(o.path+key, "%s is not a number", v)
		return def
	}
	return f
}

func (o object) bool(r *fieldReader, key string, def bool) bool {
	v, ok := o.raw(key)
	if !ok {
		return def
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		r.errorf(o.path+key, "%s is not true or false", v)
		return def
	}
	return b
}

func (o object) str(r *fieldReader, key string, def string) string {
	v, ok := o.raw(key)
	if !ok {
		return def
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		r.errorf(o.path+key, "%s is not a string", v)
		return def
	}
	return s
}

func (o object) strs(r *fieldReader, key string) []string {
	v, ok := o.raw(key)
	if !ok {
		return nil
	}
	var s []string
	if err := json.Unmarshal(v, &s); err != nil {
		r.errorf(o.path+key, "%s is not a list of strings", v)
		return nil
	}
	return s
}

// sub returns the object under key, with the keys of the legacy alias (the
// "*_dict" spelling of old transformers versions) overriding it, as
// transformers does.
func (o object) sub(r *fieldReader, key, alias string) object {
	out := object{path: key + ".", fields: map[string]json.RawMessage{}}
	for _, k := range []string{key, alias} {
		v, ok := o.raw(k)
		if !ok {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			r.errorf(k, "is not a JSON object")
			continue
		}
		for f, fv := range m {
			out.fields[f] = fv
		}
	}
	return out
}
