package blip

import (
	"fmt"
	"os"
	"path/filepath"

	"blip/data/safetensors"
)

// Save writes m as an HF folder (config.json, model.safetensors and, when
// vocab is not empty, vocab.txt) atomically: every tensor its transformers
// class expects, by its HF name, read from the device. configJSON is the
// config.json body to write (the one the model was loaded from: training
// does not change the architecture); it must describe m's shapes.
func (m *Model) Save(dir string, configJSON []byte, vocab string) error {
	cfg, err := ParseConfig(configJSON, filepath.Join(dir, ConfigName))
	if err != nil {
		return fmt.Errorf("blip: save: %w", err)
	}
	specs, err := ExpectedTensors(cfg, m.Kind)
	if err != nil {
		return err
	}
	w := safetensors.NewWriter()
	w.SetMetadata("format", "pt")
	for _, s := range specs {
		p := m.Params.Get(s.Name)
		if p == nil {
			return fmt.Errorf("blip: save %v: the model has no tensor %q", m.Kind, s.Name)
		}
		if p.Numel() != numel(s.Shape) {
			return fmt.Errorf("blip: save %v: %q has %d elements, the config's shape %v needs %d", m.Kind, s.Name, p.Numel(), s.Shape, numel(s.Shape))
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
		if err := WriteFileSync(filepath.Join(tmp, ConfigName), configJSON); err != nil {
			return err
		}
		if err := w.WriteFile(filepath.Join(tmp, "model.safetensors")); err != nil {
			return err
		}
		if vocab == "" {
			return nil
		}
		data, err := os.ReadFile(vocab)
		if err != nil {
			return fmt.Errorf("blip: save: %w", err)
		}
		return WriteFileSync(filepath.Join(tmp, VocabName), data)
	})
}
