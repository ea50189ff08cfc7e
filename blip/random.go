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
	err = writeRandomTensors(dir, specs, seed, func(name string, data []float32, rng *rand.Rand) {
		switch {
		case strings.HasSuffix(name, ".bias"):
		case isNormWeight(name):
			for i := range data {
				data[i] = 1
			}
		default:
			for i := range data {
				data[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ConfigName), config, 0o644)
}

// isNormWeight reports whether an HF key is a LayerNorm scale.
func isNormWeight(name string) bool {
	return strings.HasSuffix(name, ".weight") && strings.Contains(strings.ToLower(name), "norm")
}

// writeRandomTensors writes model.safetensors with every tensor of specs,
// each filled by fill from one seeded stream (in specs order, so the bytes
// depend only on the seed).
func writeRandomTensors(dir string, specs []TensorSpec, seed uint64, fill func(name string, data []float32, rng *rand.Rand)) error {
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
		fill(s.Name, data, rng)
		if err := w.AddFloat32(s.Name, shape, data); err != nil {
			return err
		}
	}
	return w.WriteFile(filepath.Join(dir, "model.safetensors"))
}
