package blip

import (
	"errors"
	"fmt"
)

// knownActivations are the hidden_act names transformers' ACT2FN accepts
// that a BLIP config could plausibly use. The model code decides which of
// them it implements; this only catches typos and garbage.
var knownActivations = map[string]bool{
	"gelu": true, "gelu_new": true, "gelu_fast": true, "gelu_pytorch_tanh": true,
	"quick_gelu": true, "gelu_accurate": true, "relu": true, "silu": true,
	"swish": true, "tanh": true, "sigmoid": true, "mish": true,
}

// Validate checks the sizes a model needs: positive widths and counts, heads
// that divide the width, patches that tile the image, token ids inside the
// vocabulary. Errors name the file and the field.
func (c *BlipConfig) Validate() error {
	name := c.Path
	if name == "" {
		name = "config.json"
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	positive := func(field string, v int) {
		if v <= 0 {
			bad(field, "must be positive, got %d", v)
		}
	}
	prob := func(field string, v float64) {
		if !(v >= 0 && v < 1) {
			bad(field, "must be in [0, 1), got %g", v)
		}
	}
	t, v := &c.TextConfig, &c.VisionConfig

	positive("text_config.vocab_size", t.VocabSize)
	positive("text_config.hidden_size", t.HiddenSize)
	positive("text_config.intermediate_size", t.IntermediateSize)
	positive("text_config.num_hidden_layers", t.NumHiddenLayers)
	positive("text_config.num_attention_heads", t.NumAttentionHeads)
	positive("text_config.max_position_embeddings", t.MaxPositionEmbeddings)
	positive("text_config.encoder_hidden_size", t.EncoderHiddenSize)
	if t.NumAttentionHeads > 0 && t.HiddenSize%t.NumAttentionHeads != 0 {
		bad("text_config.num_attention_heads", "%d does not divide hidden_size %d", t.NumAttentionHeads, t.HiddenSize)
	}
	if !(t.LayerNormEps > 0) {
		bad("text_config.layer_norm_eps", "must be positive, got %g", t.LayerNormEps)
	}
	if !knownActivations[t.HiddenAct] {
		bad("text_config.hidden_act", "unknown activation %q", t.HiddenAct)
	}
	prob("text_config.hidden_dropout_prob", t.HiddenDropoutProb)
	prob("text_config.attention_probs_dropout_prob", t.AttentionProbsDropoutProb)
	prob("text_config.label_smoothing", t.LabelSmoothing)
	for _, id := range []struct {
		field string
		v     int
	}{
		{"text_config.bos_token_id", t.BosTokenID},
		{"text_config.eos_token_id", t.EosTokenID},
		{"text_config.pad_token_id", t.PadTokenID},
		{"text_config.sep_token_id", t.SepTokenID},
	} {
		if t.VocabSize > 0 && (id.v < 0 || id.v >= t.VocabSize) {
			bad(id.field, "%d is outside the vocabulary [0, %d)", id.v, t.VocabSize)
		}
	}

	positive("vision_config.hidden_size", v.HiddenSize)
	positive("vision_config.intermediate_size", v.IntermediateSize)
	positive("vision_config.num_hidden_layers", v.NumHiddenLayers)
	positive("vision_config.num_attention_heads", v.NumAttentionHeads)
	positive("vision_config.num_channels", v.NumChannels)
	positive("vision_config.image_size", v.ImageSize)
	positive("vision_config.patch_size", v.PatchSize)
	if v.NumAttentionHeads > 0 && v.HiddenSize%v.NumAttentionHeads != 0 {
		bad("vision_config.num_attention_heads", "%d does not divide hidden_size %d", v.NumAttentionHeads, v.HiddenSize)
	}
	if v.PatchSize > 0 && v.ImageSize > 0 && v.ImageSize%v.PatchSize != 0 {
		bad("vision_config.image_size", "%d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
	}
	if !(v.LayerNormEps > 0) {
		bad("vision_config.layer_norm_eps", "must be positive, got %g", v.LayerNormEps)
	}
	if !knownActivations[v.HiddenAct] {
		bad("vision_config.hidden_act", "unknown activation %q", v.HiddenAct)
	}
	prob("vision_config.attention_dropout", v.AttentionDropout)
	prob("vision_config.dropout", v.Dropout)

	positive("projection_dim", c.ProjectionDim)
	positive("image_text_hidden_size", c.ImageTextHiddenSize)
	prob("label_smoothing", c.LabelSmoothing)
	return errors.Join(errs...)
}
