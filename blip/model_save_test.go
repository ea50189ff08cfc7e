package blip

import (
	"os"
	"path/filepath"
	"testing"

	"blip/gpu/cpu"
)

// TestModelSaveRoundTrip saves each tiny model kind and loads it back:
// every parameter comes back bit-identical under its HF name.
func TestModelSaveRoundTrip(t *testing.T) {
	be := cpu.New()
	for _, name := range []string{"tiny-captioning", "tiny-retrieval"} {
		src := filepath.Join("../testdata/hf-blip-tiny", name)
		m, err := LoadDir(src, be)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := os.ReadFile(filepath.Join(src, ConfigName))
		if err != nil {
			t.Fatal(err)
		}
		// Move one weight so the check sees what Save read, not the file.
		p := m.Params.List()[0]
		v := make([]float32, p.Numel())
		p.Read(v)
		v[0] += 0.5
		p.Write(v)
		dir := filepath.Join(t.TempDir(), name)
		if err := m.Save(dir, cfg, filepath.Join(src, VocabName)); err != nil {
			t.Fatal(err)
		}
		back, err := LoadDir(dir, be)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params.List() {
			q := back.Params.Get(p.Name())
			if q == nil {
				t.Fatalf("%s: %s missing after save", name, p.Name())
			}
			a, b := make([]float32, p.Numel()), make([]float32, q.Numel())
			p.Read(a)
			q.Read(b)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%s: %s[%d] = %v after save, want %v", name, p.Name(), i, b[i], a[i])
				}
			}
		}
		if _, err := os.Stat(filepath.Join(dir, VocabName)); err != nil {
			t.Error(err)
		}
		m.Close()
		back.Close()
	}
}
