package blip

import (
	"os"
	"path/filepath"
	"testing"
)

// A random folder loads as a model of its class and generates.
func TestWriteRandomFolder(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join(tinyDir, "tiny-captioning", ConfigName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteRandomFolder(dir, cfg, 1); err != nil {
		t.Fatal(err)
	}
	be := backends[0].open(t)
	m, err := LoadDir(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := m.Config.VisionConfig.ImageSize
	pixels := make([]float32, 2*3*s*s)
	for i := range pixels {
		pixels[i] = float32(i%7) / 7
	}
	gen := m.CaptionConfig()
	gen.MaxNewTokens, gen.MinNewTokens = 5, 5
	out, err := m.GenerateCaptions(be, pixels, 2, nil, gen)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Sequences) != 2 || out.Lengths[0] != 6 {
		t.Fatalf("got %d sequences of length %v, want 2 of 6", len(out.Sequences), out.Lengths)
	}
	if err := WriteRandomFolder(t.TempDir(), []byte(`{"text_config": {}}`), 1); err == nil {
		t.Error("a config without architectures was accepted")
	}
}
