package blip

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"blip/data/safetensors"
)

// WriteRandomFolder writes an HF folder (config.json, model.safetensors) with
// random weights for config (a config.json body) and its model class: every
// tensor the class needs, N(0, 0.02) for matrices and embeddings, ones for
// LayerNorm weights, zeros for biases, as a freshly initialised BERT/ViT.
// Benchmarks and tests use it where real weights cannot be downloaded.
func WriteRandomFolder(dir string, config []byte, seed uint64) error {
	cfg, err := ParseConfig(config, filepath.Join(dir, ConfigName))
	if err != nil {
		return err
	}
	if cfg.Kind == KindUnknown {
		return fmt.Errorf("blip: random folder: config has no architectures")
	}
	specs, err := ExpectedTensors(cfg, cfg.Kind)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 0x626c6970))
	w := safetensors.NewWriter()
	for _, s := range specs {
		n := 1
		shape := make([]int64, len(s.Shape))
		for i, d := range s.Shape {
			n *= d
			shape[i] = int64(d)
		}
		data := make([]float32, n)
		switch {
		case strings.HasSuffix(s.Name, ".bias"):
		case strings.Contains(strings.ToLower(s.Name), "norm") && strings.HasSuffix(s.Name, ".weight"):
			for i := range data {
				data[i] = 1
			}
		default:
			for i := range data {
				data[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		if err := w.AddFloat32(s.Name, shape, data); err != nil {
			return err
		}
	}
	if err := w.WriteFile(filepath.Join(dir, "model.safetensors")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ConfigName), config, 0o644)
}
