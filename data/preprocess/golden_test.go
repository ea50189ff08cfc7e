package preprocess

import (
	"math"
	"path/filepath"
	"testing"

	"blip/data/safetensors"
)

var goldenDir = filepath.Join("..", "..", "testdata", "hf-blip-tiny")

// TestGoldenPixels checks the four test photos against the pixel_values
// HF's PIL-backed BlipImageProcessor produced.
func TestGoldenPixels(t *testing.T) {
	f, err := safetensors.Open(filepath.Join(goldenDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := f.Float32("pixel_values")
	if err != nil {
		t.Fatal(err)
	}
	p, err := FromConfigDir(filepath.Join(goldenDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Height != 64 || p.Width != 64 {
		t.Fatalf("size %dx%d, want 64x64 from config.json", p.Height, p.Width)
	}
	const n = 3 * 64 * 64
	var maxNorm, maxByte float64
	for i, name := range []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"} {
		img, err := Load(filepath.Join(goldenDir, "images", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Pixels(img)
		if err != nil {
			t.Fatal(err)
		}
		w := want[i*n : (i+1)*n]
		var imgMax float64
		for j := range got {
			c := j / (64 * 64)
			d := math.Abs(float64(got[j]) - float64(w[j]))
			maxNorm = math.Max(maxNorm, d)
			imgMax = math.Max(imgMax, d)
			// Un-normalised difference in 8-bit units.
			maxByte = math.Max(maxByte, d*p.Std[c]*255)
		}
		t.Logf("%s: max |diff| %.3g (normalised units)", name, imgMax)
	}
	t.Logf("max difference: %.3g normalised, %.3g /255 after un-normalising", maxNorm, maxByte)
	if maxNorm > 1e-6 {
		t.Errorf("pixels differ from the PIL golden by %.3g (%.3g/255)", maxNorm, maxByte)
	}
}
