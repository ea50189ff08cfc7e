package blip

import (
	"regexp"
	"strings"
)

// visionRenames maps the original ViT's parameter names (B:models/vit.py,
// under "visual_encoder.") to transformers' BlipVisionModel names. Only
// names change: qkv stays fused, as HF keeps it.
var visionRenames = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^visual_encoder\.cls_token$`), "vision_model.embeddings.class_embedding"},
	{regexp.MustCompile(`^visual_encoder\.pos_embed$`), "vision_model.embeddings.position_embedding"},
	{regexp.MustCompile(`^visual_encoder\.patch_embed\.proj\.(weight|bias)$`), "vision_model.embeddings.patch_embedding.$1"},
	{regexp.MustCompile(`^visual_encoder\.norm\.(weight|bias)$`), "vision_model.post_layernorm.$1"},
	{regexp.MustCompile(`^visual_encoder\.blocks\.(\d+)\.norm1\.(weight|bias)$`), "vision_model.encoder.layers.$1.layer_norm1.$2"},
	{regexp.MustCompile(`^visual_encoder\.blocks\.(\d+)\.norm2\.(weight|bias)$`), "vision_model.encoder.layers.$1.layer_norm2.$2"},
	{regexp.MustCompile(`^visual_encoder\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$`), "vision_model.encoder.layers.$1.self_attn.qkv.$2"},
	{regexp.MustCompile(`^visual_encoder\.blocks\.(\d+)\.attn\.proj\.(weight|bias)$`), "vision_model.encoder.layers.$1.self_attn.projection.$2"},
	{regexp.MustCompile(`^visual_encoder\.blocks\.(\d+)\.mlp\.(fc[12])\.(weight|bias)$`), "vision_model.encoder.layers.$1.mlp.$2.$3"},
}

// OriginalToHF returns the transformers name of a salesforce/BLIP state
// dict entry. The text modules (text_encoder, text_decoder) and the heads
// (vision_proj, text_proj, itm_head) already use HF's names; only the ViT's
// change. ok is false for a visual_encoder name with no HF counterpart.
func OriginalToHF(name string) (hf string, ok bool) {
	if !strings.HasPrefix(name, "visual_encoder.") {
		return name, true
	}
	for _, r := range visionRenames {
		if r.re.MatchString(name) {
			return r.re.ReplaceAllString(name, r.repl), true
		}
	}
	return name, false
}

// trainingOnly reports whether an original entry exists only for
// pretraining: momentum encoders (visual_encoder_m, text_encoder_m,
// vision_proj_m, text_proj_m), the ITC feature queues and their pointer, and
// the learned temperature. HF models have no counterpart.
func trainingOnly(name string) bool {
	top, _, _ := strings.Cut(name, ".")
	switch top {
	case "image_queue", "text_queue", "idx_queue", "ptr_queue", "temp":
		return true
	}
	return strings.HasSuffix(top, "_m")
}
