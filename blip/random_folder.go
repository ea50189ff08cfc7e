package blip

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WriteRandomFolderFrom writes an HF folder of the given kind with random
// weights to dir: src's config.json with "architectures" set to the kind's
// class, src's vocab.txt, and a model.safetensors holding every tensor
// ExpectedTensors lists. Weights are uniform in [-scale, scale] (LayerNorm
// weights 1 plus that), from seed, so that tests get large, well separated
// logits; the folder exists to test model classes that have no golden
// checkpoint (BlipForQuestionAnswering), not to be trained from.
func WriteRandomFolderFrom(dir, src string, kind ModelKind, seed uint64, scale float32) error {
	raw, err := os.ReadFile(filepath.Join(src, ConfigName))
	if err != nil {
		return fmt.Errorf("blip: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("blip: %s: %w", filepath.Join(src, ConfigName), err)
	}
	obj["architectures"] = []string{kind.String()}
	out, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(out, filepath.Join(dir, ConfigName))
	if err != nil {
		return err
	}
	specs, err := ExpectedTensors(cfg, kind)
	if err != nil {
		return fmt.Errorf("blip: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigName), out, 0o644); err != nil {
		return err
	}
	if vocab, err := os.ReadFile(filepath.Join(src, VocabName)); err == nil {
		if err := os.WriteFile(filepath.Join(dir, VocabName), vocab, 0o644); err != nil {
			return err
		}
	}
	return writeRandomTensors(dir, specs, seed, func(name string, data []float32, rng *rand.Rand) {
		// LayerNorm weights near 1 keep the normalised states at unit
		// scale; everything else is symmetric noise.
		base := float32(0)
		if isNormWeight(name) {
			base = 1
		}
		for i := range data {
			data[i] = base + scale*(2*rng.Float32()-1)
		}
	})
}
