package blip

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"blip/data/safetensors"
)

// ExportKinds are the HF model classes a pretrained checkpoint exports to,
// as BLIP initialises its downstream models from the pretrained one:
// captioning (ViT + decoder), retrieval (ViT + encoder + ITC projections +
// ITM head) and VQA (ViT + encoder + decoder).
var ExportKinds = []ModelKind{KindCaptioning, KindRetrieval, KindQA}

// architecture names the transformers class of a kind.
func architecture(k ModelKind) string {
	switch k {
	case KindCaptioning:
		return "BlipForConditionalGeneration"
	case KindRetrieval:
		return "BlipForImageTextRetrieval"
	case KindQA:
		return "BlipForQuestionAnswering"
	}
	return ""
}

// Export writes an HF folder of the given kind (config.json,
// model.safetensors and vocab.txt when vocab is not empty) from the
// pretraining parameters, atomically: every tensor transformers' class
// expects, by its HF name, read through the aliases of shared weights.
// modelConfig is the config.json body the model was built from; the
// export sets its architectures and unties the LM head (pretraining keeps
// it separate from the word embeddings).
func (m *Pretrain) Export(dir string, kind ModelKind, modelConfig []byte, vocab string) error {
	arch := architecture(kind)
	if arch == "" {
		return fmt.Errorf("blip: export: no HF class for %v", kind)
	}
	var cfg map[string]any
	if err := json.Unmarshal(modelConfig, &cfg); err != nil {
		return fmt.Errorf("blip: export: model config: %w", err)
	}
	cfg["architectures"] = []string{arch}
	cfg["tie_word_embeddings"] = false
	if tc, ok := cfg["text_config"].(map[string]any); ok {
		tc["tie_word_embeddings"] = false
		tc["is_decoder"] = true
	} else {
		cfg["text_config"] = map[string]any{"tie_word_embeddings": false, "is_decoder": true}
	}
	cfgBytes, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	parsed, err := ParseConfig(cfgBytes, filepath.Join(dir, ConfigName))
	if err != nil {
		return fmt.Errorf("blip: export: %w", err)
	}
	specs, err := ExpectedTensors(parsed, kind)
	if err != nil {
		return err
	}
	w := safetensors.NewWriter()
	w.SetMetadata("format", "pt")
	for _, s := range specs {
		p := m.Params.Get(s.Name)
		if p == nil {
			return fmt.Errorf("blip: export %v: the pretraining model has no tensor %q", kind, s.Name)
		}
		if p.Numel() != numel(s.Shape) {
			return fmt.Errorf("blip: export %v: %q has %d elements, the HF shape %v needs %d", kind, s.Name, p.Numel(), s.Shape, numel(s.Shape))
		}
		v := make([]float32, p.Numel())
		if err := p.Read(v); err != nil {
			return err
		}
		shape := make([]int64, len(s.Shape))
		for i, d := range s.Shape {
			shape[i] = int64(d)
		}
		if err := w.AddFloat32(s.Name, shape, v); err != nil {
			return err
		}
	}
	return WriteFolderAtomic(dir, true, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, ConfigName), append(cfgBytes, '\n'), 0o644); err != nil {
			return err
		}
		if err := w.WriteFile(filepath.Join(tmp, "model.safetensors")); err != nil {
			return err
		}
		if vocab != "" {
			data, err := os.ReadFile(vocab)
			if err != nil {
				return fmt.Errorf("blip: export: %w", err)
			}
			if err := os.WriteFile(filepath.Join(tmp, "vocab.txt"), data, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
