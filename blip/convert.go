package blip

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"blip/blip/torchpt"
	"blip/data/safetensors"
)

// ConvertOptions configures ConvertOriginal.
type ConvertOptions struct {
	// Config is the config.json of the HF model to produce (required). It is
	// written to the output as given; its sizes are checked against the
	// weights and its "architectures" choose the model class.
	Config []byte
	// ConfigPath names Config in messages (e.g. the --config file).
	ConfigPath string
	// VocabPath is a vocab.txt to copy into the output ("" for none).
	VocabPath string
	// Kind overrides the model class the config names.
	Kind ModelKind
	// Overwrite allows replacing a non-empty output folder.
	Overwrite bool
}

// ConvertReport says what ConvertOriginal did.
type ConvertReport struct {
	Kind ModelKind
	// Written lists the HF names written to model.safetensors, sorted.
	Written []string
	// Dropped lists original entries not written, each with the reason.
	Dropped []string
	// Interpolated is set when the position embedding was resized to the
	// config's image size.
	Interpolated bool
}

// ConvertOriginal converts a salesforce/BLIP checkpoint (a torch.save file
// holding {"model": state_dict}, or the bare state dict) to an HF folder in
// outDir: config.json (opts.Config), model.safetensors (F32) and vocab.txt.
// ViT names are mapped to transformers' (qkv stays fused), pretraining-only
// entries (momentum copies *_m, queues, temp) and modules the target class
// lacks are dropped, the LM head's tied decoder weight is left out as
// save_pretrained does, and a position embedding trained at another image
// size is resized bicubically as the original loader does. The folder is
// written atomically.
func ConvertOriginal(src, outDir string, opts ConvertOptions) (*ConvertReport, error) {
	if len(opts.Config) == 0 {
		return nil, errors.New("convert: a config.json for the HF model is required")
	}
	cfg, err := ParseConfig(opts.Config, opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	kind := opts.Kind
	if kind == KindUnknown {
		kind = cfg.Kind
	}
	if kind == KindUnknown {
		return nil, fmt.Errorf("convert: %s names no BLIP architecture; say which model class to produce", configName(opts.ConfigPath))
	}
	if err := checkOutputDir(outDir, opts.Overwrite); err != nil {
		return nil, err
	}
	a, err := torchpt.Open(src)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer a.Close()
	sd, err := a.FindStateDict()
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	plan, err := planConversion(sd, cfg, kind)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", src, err)
	}
	w := safetensors.NewWriter()
	w.SetMetadata("format", "pt")
	for _, t := range plan.tensors {
		data, err := sd.Float32(t.from)
		if err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		if t.resize != nil {
			if data, err = t.resize(data); err != nil {
				return nil, fmt.Errorf("convert: %s: %s: %w", src, t.from, err)
			}
		}
		shape := make([]int64, len(t.shape))
		for i, d := range t.shape {
			shape[i] = int64(d)
		}
		if err := w.AddFloat32(t.to, shape, data); err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
	}
	err = WriteFolderAtomic(outDir, opts.Overwrite, func(tmp string) error {
		if err := WriteFileSync(filepath.Join(tmp, ConfigName), opts.Config); err != nil {
			return fmt.Errorf("convert: %w", err)
		}
		if err := w.WriteFile(filepath.Join(tmp, SafetensorsName)); err != nil {
			return fmt.Errorf("convert: %w", err)
		}
		if opts.VocabPath != "" {
			if err := copyFileSync(filepath.Join(tmp, VocabName), opts.VocabPath); err != nil {
				return fmt.Errorf("convert: vocabulary: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := &ConvertReport{Kind: kind, Dropped: plan.dropped, Interpolated: plan.interpolated}
	for _, t := range plan.tensors {
		rep.Written = append(rep.Written, t.to)
	}
	sort.Strings(rep.Written)
	return rep, nil
}

// configName is the config's name for messages.
func configName(path string) string {
	if path == "" {
		return "the config"
	}
	return path
}

// planned is one output tensor: read original entry from, write as to.
type planned struct {
	from, to string
	shape    []int
	resize   func([]float32) ([]float32, error)
}

// plan is the mapping of a conversion.
type plan struct {
	tensors      []planned
	dropped      []string
	interpolated bool
}

// planConversion maps the original entries onto the parameters of kind under
// cfg, checking shapes, and decides what is dropped and why.
func planConversion(sd *torchpt.StateDict, cfg *BlipConfig, kind ModelKind) (*plan, error) {
	specs, err := ExpectedTensors(cfg, kind)
	if err != nil {
		return nil, err
	}
	tie := cfg.TextConfig.TieWordEmbeddings && (kind == KindCaptioning || kind == KindQA)
	want := map[string][]int{}
	modules := map[string]bool{} // top-level modules the class has
	for _, s := range specs {
		if tie && s.Name == DecoderWeightName {
			continue // save_pretrained leaves the tied copy out
		}
		want[s.Name] = s.Shape
		top, _, _ := strings.Cut(s.Name, ".")
		modules[top] = true
	}
	p := &plan{}
	from := map[string]string{} // HF name -> original name
	var problems []string
	drop := func(name, why string) { p.dropped = append(p.dropped, name+": "+why) }
	for _, name := range sd.Names() {
		if trainingOnly(name) {
			drop(name, "pretraining only (momentum copy, queue or temperature)")
			continue
		}
		hf, ok := OriginalToHF(name)
		top, _, _ := strings.Cut(hf, ".")
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%q has no HF counterpart", name))
		case want[hf] != nil:
			if prev, dup := from[hf]; dup {
				problems = append(problems, fmt.Sprintf("%q and %q both map to %q", prev, name, hf))
			}
			from[hf] = name
		case strings.HasSuffix(hf, ".position_ids"):
			drop(name, "buffer, not a parameter")
		case hf == DecoderWeightName && tie:
			if err := checkTied(sd, name, DecoderEmbedName); err != nil {
				problems = append(problems, err.Error())
			}
			drop(name, "tied to "+DecoderEmbedName)
		case hf == decoderBiasTieName:
			if err := checkTied(sd, name, decoderBiasName); err != nil {
				problems = append(problems, err.Error())
			}
			drop(name, "tied to "+decoderBiasName)
		case modules[top]:
			problems = append(problems, fmt.Sprintf("unexpected entry %q: %v has no parameter %q", name, kind, hf))
		default:
			drop(name, fmt.Sprintf("module %s is not part of %v", top, kind))
		}
	}
	for _, s := range specs {
		shape, ok := want[s.Name]
		if !ok {
			continue
		}
		orig, ok := from[s.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (HF %q, shape %v)", hfToOriginal(s.Name), s.Name, shape))
			continue
		}
		info, _ := sd.Info(orig)
		t := planned{from: orig, to: s.Name, shape: shape}
		if !info.DType.IsFloat() {
			problems = append(problems, fmt.Sprintf("%q has dtype %s, expected a float type", orig, info.DType))
		}
		if !equalShape64(info.Shape, shape) {
			if s.Name == "vision_model.embeddings.position_embedding" && resizable(info.Shape, shape) {
				oldN, newN, c := int(info.Shape[1]), shape[1], shape[2]
				t.resize = func(v []float32) ([]float32, error) { return interpolatePosEmbed(v, oldN, newN, c) }
				p.interpolated = true
			} else {
				problems = append(problems, fmt.Sprintf("%q has shape %v, the config implies %v for %q", orig, info.Shape, shape, s.Name))
			}
		}
		p.tensors = append(p.tensors, t)
	}
	if len(problems) > 0 {
		if len(problems) > maxListed {
			problems = append(problems[:maxListed:maxListed], fmt.Sprintf("... and %d more", len(problems)-maxListed))
		}
		return nil, fmt.Errorf("checkpoint does not convert to %v with this config:\n  %s", kind, strings.Join(problems, "\n  "))
	}
	return p, nil
}

// resizable reports whether a position embedding [1, 1+g*g, C] can be
// resized to [1, 1+n*n, C].
func resizable(have []int64, want []int) bool {
	return len(have) == 3 && len(want) == 3 && have[0] == 1 && want[0] == 1 &&
		have[2] == int64(want[2]) && have[1] > 1
}

// checkTied verifies that a tied duplicate holds the same values as the
// tensor it is tied to, so dropping it loses nothing.
func checkTied(sd *torchpt.StateDict, dup, target string) error {
	eq, err := sd.Equal(dup, target)
	if err != nil {
		return err
	}
	if !eq {
		return fmt.Errorf("%q differs from %q but the config ties them", dup, target)
	}
	return nil
}

// hfToOriginal names the original entry an HF parameter comes from, for
// messages.
func hfToOriginal(hf string) string {
	for _, n := range []struct{ hf, orig string }{
		{"vision_model.embeddings.class_embedding", "visual_encoder.cls_token"},
		{"vision_model.embeddings.position_embedding", "visual_encoder.pos_embed"},
		{"vision_model.embeddings.patch_embedding.", "visual_encoder.patch_embed.proj."},
		{"vision_model.post_layernorm.", "visual_encoder.norm."},
	} {
		if strings.HasPrefix(hf, n.hf) {
			return n.orig + strings.TrimPrefix(hf, n.hf)
		}
	}
	if rest, ok := strings.CutPrefix(hf, "vision_model.encoder.layers."); ok {
		r := strings.NewReplacer("layer_norm1", "norm1", "layer_norm2", "norm2",
			"self_attn.projection", "attn.proj", "self_attn.qkv", "attn.qkv")
		return "visual_encoder.blocks." + r.Replace(rest)
	}
	return hf
}
