package blip

import "strings"

// ModelKind is the transformers class a BLIP folder was saved from, which
// decides its modules and so its weight names.
type ModelKind int

// The BLIP model classes of transformers.
const (
	KindUnknown     ModelKind = iota
	KindCaptioning            // BlipForConditionalGeneration: vision_model, text_decoder
	KindRetrieval             // BlipForImageTextRetrieval: vision_model, text_encoder, vision_proj, text_proj, itm_head
	KindQA                    // BlipForQuestionAnswering: vision_model, text_encoder, text_decoder
	KindContrastive           // BlipModel: vision_model, text_model, visual_projection, text_projection, logit_scale
)

// architectureKinds maps "architectures" entries to kinds.
var architectureKinds = map[string]ModelKind{
	"BlipForConditionalGeneration": KindCaptioning,
	"BlipForImageTextRetrieval":    KindRetrieval,
	"BlipForQuestionAnswering":     KindQA,
	"BlipModel":                    KindContrastive,
}

// String returns the transformers class name.
func (k ModelKind) String() string {
	switch k {
	case KindCaptioning:
		return "BlipForConditionalGeneration"
	case KindRetrieval:
		return "BlipForImageTextRetrieval"
	case KindQA:
		return "BlipForQuestionAnswering"
	case KindContrastive:
		return "BlipModel"
	}
	return "unknown"
}

// ParseModelKind accepts a class name or a short alias (caption,
// retrieval/itm, vqa/qa, model/contrastive).
func ParseModelKind(s string) (ModelKind, bool) {
	if k, ok := architectureKinds[s]; ok {
		return k, true
	}
	switch strings.ToLower(s) {
	case "caption", "captioning":
		return KindCaptioning, true
	case "retrieval", "itm":
		return KindRetrieval, true
	case "vqa", "qa":
		return KindQA, true
	case "model", "contrastive", "base":
		return KindContrastive, true
	}
	return KindUnknown, false
}

// kindFromArchitectures returns the kind of the first known architecture.
func kindFromArchitectures(archs []string) ModelKind {
	for _, a := range archs {
		if k, ok := architectureKinds[a]; ok {
			return k
		}
	}
	return KindUnknown
}

// KindFromNames infers the model class from weight names, for folders whose
// config names no architecture: the top-level modules differ between classes.
func KindFromNames(names []string) ModelKind {
	has := map[string]bool{}
	for _, n := range names {
		if i := strings.IndexByte(n, '.'); i > 0 {
			has[n[:i]] = true
		}
	}
	switch {
	case !has["vision_model"]:
		return KindUnknown
	case has["text_encoder"] && has["itm_head"]:
		return KindRetrieval
	case has["text_encoder"] && has["text_decoder"]:
		return KindQA
	case has["text_decoder"]:
		return KindCaptioning
	case has["text_model"]:
		return KindContrastive
	}
	return KindUnknown
}
