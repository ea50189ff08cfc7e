package blip

import (
	"fmt"
	"strings"

	"blip/gpu"
)

// ParsePrecision reads a --precision value: fp32, fp16 or bf16 (also
// spelled f32/float32, f16/float16/half, bfloat16).
func ParsePrecision(s string) (gpu.DType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "fp32", "f32", "float32":
		return gpu.F32, nil
	case "fp16", "f16", "float16", "half":
		return gpu.F16, nil
	case "bf16", "bfloat16":
		return gpu.BF16, nil
	}
	return gpu.F32, fmt.Errorf("precision %q: want fp32, fp16 or bf16", s)
}

// PrecisionName spells d as ParsePrecision reads it and the training
// configs' "precision" setting holds it: fp32, fp16 or bf16.
func PrecisionName(d gpu.DType) string {
	switch d {
	case gpu.F16:
		return "fp16"
	case gpu.BF16:
		return "bf16"
	}
	return "fp32"
}

// IsPrecision reports whether ParsePrecision accepts s.
func IsPrecision(s string) bool {
	_, err := ParsePrecision(s)
	return err == nil
}

// SetPrecision selects the storage of the model's linear-layer weights for
// inference: gpu.F32, or gpu.F16 / gpu.BF16, which keeps a 16-bit copy of
// the weights that every product reads (half the weight bytes; activations,
// biases, LayerNorm, embeddings and all accumulation stay fp32). Plans
// compiled before are dropped so that they pick it up.
func (m *Model) SetPrecision(dt gpu.DType) error {
	if err := m.Params.SetStorage(dt); err != nil {
		return err
	}
	for _, c := range m.decChains {
		c.close()
	}
	m.decChains = nil
	m.vision.close()
	m.cross.close()
	return nil
}

// Precision is the storage SetPrecision selected.
func (m *Model) Precision() gpu.DType { return m.Params.Storage() }
