package preprocess

import (
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	// The preprocessor_config.json of Salesforce/blip-image-captioning-base.
	p, err := ParseConfig([]byte(`{
	  "do_normalize": true, "do_resize": true,
	  "image_mean": [0.48145466, 0.4578275, 0.40821073],
	  "image_processor_type": "BlipImageProcessor",
	  "image_std": [0.26862954, 0.26130258, 0.27577711],
	  "processor_class": "BlipProcessor", "resample": 3,
	  "rescale_factor": 0.00392156862745098,
	  "size": {"height": 384, "width": 384}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p != NewProcessor(384) {
		t.Errorf("got %+v\nwant %+v", p, NewProcessor(384))
	}
	p, err = ParseConfig([]byte(`{"size": 224, "image_mean": 0.5, "image_std": [1,2,3], "resample": 2, "do_normalize": false}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Height != 224 || p.Width != 224 || p.Mean != [3]float64{0.5, 0.5, 0.5} || p.Std != [3]float64{1, 2, 3} ||
		p.Resample != Bilinear || p.DoNormalize {
		t.Errorf("got %+v", p)
	}
	p, err = ParseConfig([]byte(`{"size": {"shortest_edge": 300}}`))
	if err != nil || p.Height != 300 || p.Width != 300 {
		t.Errorf("shortest_edge: %+v %v", p, err)
	}
	for _, bad := range []string{
		`{"size": {"height": 10}}`, `{"size": "big"}`, `{"image_mean": [1, 2]}`,
		`{"image_std": [1, 0, 1]}`, `{"resample": 9}`, `{"size": -3}`, `not json`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestFromConfigDir(t *testing.T) {
	dir := t.TempDir()
	// No files: BLIP defaults.
	p, err := FromConfigDir(dir)
	if err != nil || p != NewProcessor(DefaultSize) {
		t.Errorf("empty dir: %+v %v", p, err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"vision_config": {"image_size": 96}}`), 0o644)
	if p, _ := FromConfigDir(dir); p.Height != 96 || p.Width != 96 {
		t.Errorf("image_size from config.json: %+v", p)
	}
	// preprocessor_config.json wins.
	os.WriteFile(filepath.Join(dir, ConfigName), []byte(`{"size": {"height": 32, "width": 48}}`), 0o644)
	if p, _ := FromConfigDir(dir); p.Height != 32 || p.Width != 48 {
		t.Errorf("preprocessor_config.json: %+v", p)
	}
	os.WriteFile(filepath.Join(dir, ConfigName), []byte(`{"size": `), 0o644)
	if _, err := FromConfigDir(dir); err == nil || !strings.Contains(err.Error(), ConfigName) {
		t.Errorf("bad config: %v", err)
	}
}

func TestPixelsLayoutAndValues(t *testing.T) {
	// A 2x1 image without resizing: CHW layout and HF's arithmetic.
	m := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	m.SetNRGBA(0, 0, color.NRGBA{0, 128, 255, 255})
	m.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 255})
	p := NewProcessor(2)
	p.DoResize = false
	px, err := p.Pixels(m)
	if err != nil {
		t.Fatal(err)
	}
	vals := [2][3]float64{{0, 128, 255}, {10, 20, 30}}
	for c := 0; c < 3; c++ {
		for i := 0; i < 2; i++ {
			x := float32(vals[i][c] / 255)
			want := (x - float32(ClipMean[c])) / float32(ClipStd[c])
			if got := px[c*2+i]; got != want {
				t.Errorf("channel %d pixel %d = %v, want %v", c, i, got, want)
			}
		}
	}
	// Without rescale and normalisation the bytes come through.
	p.DoRescale, p.DoNormalize = false, false
	px, _ = p.Pixels(m)
	if px[0] != 0 || px[1] != 10 || px[2] != 128 || px[5] != 30 {
		t.Errorf("raw values %v", px)
	}
	// Resizing and batching.
	p = NewProcessor(4)
	b, err := p.Batch([]image.Image{m, m})
	if err != nil || len(b) != 2*3*4*4 {
		t.Fatalf("batch: %d %v", len(b), err)
	}
	for i := 0; i < 48; i++ {
		if b[i] != b[48+i] || math.IsNaN(float64(b[i])) {
			t.Fatal("batch entries differ")
		}
	}
	p.Width = 0
	if _, err := p.Pixels(m); err == nil {
		t.Error("zero width accepted")
	}
	if _, err := NewProcessor(4).Pixels(image.NewGray(image.Rect(0, 0, 0, 0))); err == nil {
		t.Error("empty image accepted")
	}
}

func TestResizeErrors(t *testing.T) {
	src := NewRGB(4, 4)
	if _, err := Resize(src, 0, 3, Bicubic); err == nil {
		t.Error("zero width")
	}
	if _, err := Resize(src, 3, 3, Filter(42)); err == nil {
		t.Error("unknown filter")
	}
	same, err := Resize(src, 4, 4, Bicubic)
	if err != nil || &same.Pix[0] == &src.Pix[0] {
		t.Error("same-size resize should copy")
	}
	if Bicubic.String() != "BICUBIC" || Filter(42).String() != "Filter(42)" {
		t.Error("String")
	}
}
