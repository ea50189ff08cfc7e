package preprocess

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
)

// CLIP normalisation constants (OPENAI_CLIP_MEAN / OPENAI_CLIP_STD), which
// BLIP uses.
var (
	ClipMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	ClipStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// DefaultSize is the image size of BlipImageProcessor's defaults.
const DefaultSize = 384

// Processor holds the settings of an HF BLIP image processor.
type Processor struct {
	Height, Width int    // output size (when DoResize)
	DoResize      bool   // resize to Height x Width
	Resample      Filter // Pillow filter for the resize
	DoRescale     bool   // multiply by RescaleFactor
	RescaleFactor float64
	DoNormalize   bool // (x - Mean) / Std per channel
	Mean, Std     [3]float64
	// DoConvertRGB is accepted for config compatibility; images are always
	// RGB here.
	DoConvertRGB bool
}

// NewProcessor returns BlipImageProcessor's defaults at size x size.
func NewProcessor(size int) Processor {
	return Processor{
		Height: size, Width: size,
		DoResize: true, Resample: Bicubic,
		DoRescale: true, RescaleFactor: 1.0 / 255,
		DoNormalize: true, Mean: ClipMean, Std: ClipStd,
		DoConvertRGB: true,
	}
}

// ConfigName is the HF file holding image processor settings.
const ConfigName = "preprocessor_config.json"

// rawConfig is the subset of preprocessor_config.json that matters here.
type rawConfig struct {
	Size          json.RawMessage `json:"size"`
	ImageMean     json.RawMessage `json:"image_mean"`
	ImageStd      json.RawMessage `json:"image_std"`
	RescaleFactor *float64        `json:"rescale_factor"`
	DoResize      *bool           `json:"do_resize"`
	DoRescale     *bool           `json:"do_rescale"`
	DoNormalize   *bool           `json:"do_normalize"`
	DoConvertRGB  *bool           `json:"do_convert_rgb"`
	Resample      *int            `json:"resample"`
}

// FromConfigDir reads dir/preprocessor_config.json. Without that file it
// returns the BLIP defaults at the vision image_size of dir/config.json
// (DefaultSize when that is absent too).
func FromConfigDir(dir string) (Processor, error) {
	path := filepath.Join(dir, ConfigName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewProcessor(imageSizeFromModelConfig(dir)), nil
	}
	if err != nil {
		return Processor{}, fmt.Errorf("preprocess: %w", err)
	}
	p, err := ParseConfig(data)
	if err != nil {
		return Processor{}, fmt.Errorf("preprocess: %s: %v", path, err)
	}
	return p, nil
}

// imageSizeFromModelConfig reads vision_config.image_size of config.json.
func imageSizeFromModelConfig(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return DefaultSize
	}
	var c struct {
		VisionConfig struct {
			ImageSize int `json:"image_size"`
		} `json:"vision_config"`
	}
	if json.Unmarshal(data, &c) != nil || c.VisionConfig.ImageSize <= 0 {
		return DefaultSize
	}
	return c.VisionConfig.ImageSize
}

// ParseConfig parses preprocessor_config.json content; missing keys keep
// BlipImageProcessor's defaults.
func ParseConfig(data []byte) (Processor, error) {
	var rc rawConfig
	if err := json.Unmarshal(data, &rc); err != nil {
		return Processor{}, fmt.Errorf("bad JSON: %v", err)
	}
	p := NewProcessor(DefaultSize)
	if len(rc.Size) > 0 && string(rc.Size) != "null" {
		var n int
		var m map[string]int
		switch {
		case json.Unmarshal(rc.Size, &n) == nil:
			p.Height, p.Width = n, n
		case json.Unmarshal(rc.Size, &m) == nil:
			h, hok := m["height"]
			w, wok := m["width"]
			if se, ok := m["shortest_edge"]; ok && !hok && !wok {
				// BLIP always resizes to a square; a shortest_edge-only size
				// is read as a square of that side.
				h, w, hok, wok = se, se, true, true
			}
			if !hok || !wok {
				return Processor{}, fmt.Errorf(`size %s: want {"height", "width"} or an integer`, rc.Size)
			}
			p.Height, p.Width = h, w
		default:
			return Processor{}, fmt.Errorf(`size %s: want {"height", "width"} or an integer`, rc.Size)
		}
	}
	var err error
	if p.Mean, err = triple(rc.ImageMean, p.Mean, "image_mean"); err != nil {
		return Processor{}, err
	}
	if p.Std, err = triple(rc.ImageStd, p.Std, "image_std"); err != nil {
		return Processor{}, err
	}
	if rc.RescaleFactor != nil {
		p.RescaleFactor = *rc.RescaleFactor
	}
	if rc.DoResize != nil {
		p.DoResize = *rc.DoResize
	}
	if rc.DoRescale != nil {
		p.DoRescale = *rc.DoRescale
	}
	if rc.DoNormalize != nil {
		p.DoNormalize = *rc.DoNormalize
	}
	if rc.DoConvertRGB != nil {
		p.DoConvertRGB = *rc.DoConvertRGB
	}
	if rc.Resample != nil {
		p.Resample = Filter(*rc.Resample)
	}
	return p, p.Validate()
}

// triple parses a 3-vector or a scalar (applied to all channels).
func triple(raw json.RawMessage, def [3]float64, name string) ([3]float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	var v []float64
	var s float64
	if json.Unmarshal(raw, &s) == nil {
		return [3]float64{s, s, s}, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 3 {
		return def, fmt.Errorf("%s %s: want 3 numbers", name, raw)
	}
	return [3]float64{v[0], v[1], v[2]}, nil
}

// Validate checks that the settings can be applied.
func (p Processor) Validate() error {
	if p.DoResize {
		if p.Height <= 0 || p.Width <= 0 {
			return fmt.Errorf("preprocess: size %dx%d must be positive", p.Height, p.Width)
		}
		if _, _, ok := p.Resample.kernel(); !ok && p.Resample != Nearest {
			return fmt.Errorf("preprocess: unsupported resample %d", int(p.Resample))
		}
	}
	if p.DoNormalize {
		for _, s := range p.Std {
			if s == 0 {
				return errors.New("preprocess: image_std has a zero")
			}
		}
	}
	return nil
}

// Pixels turns an image into the model input: 3*H*W float32 values in CHW
// order, computed as HF does (rescale in float64 then rounded to float32,
// normalise in float32).
func (p Processor) Pixels(img image.Image) ([]float32, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	src := ToRGB(img)
	if src.W == 0 || src.H == 0 {
		return nil, fmt.Errorf("preprocess: empty %dx%d image", src.W, src.H)
	}
	if p.DoResize {
		var err error
		if src, err = Resize(src, p.Width, p.Height, p.Resample); err != nil {
			return nil, err
		}
	}
	lut := p.lookup()
	n := src.W * src.H
	out := make([]float32, 3*n)
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			out[c*n+i] = lut[c][src.Pix[3*i+c]]
		}
	}
	return out, nil
}

// lookup tabulates the output value of every byte for each channel.
func (p Processor) lookup() [3][256]float32 {
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		mean, std := float32(p.Mean[c]), float32(p.Std[c])
		for v := 0; v < 256; v++ {
			x := float32(v)
			if p.DoRescale {
				// numpy: uint8 -> float64, times the factor, cast to float32.
				x = float32(float64(v) * p.RescaleFactor)
			}
			if p.DoNormalize {
				// numpy float32 arithmetic with float32 mean and std.
				x = (x - mean) / std
			}
			lut[c][v] = x
		}
	}
	return lut
}

// Batch processes several images into one [N,3,H,W] buffer. All results
// must have the same size (always true when DoResize is set).
func (p Processor) Batch(imgs []image.Image) ([]float32, error) {
	var out []float32
	size := -1
	for i, img := range imgs {
		px, err := p.Pixels(img)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		if size >= 0 && len(px) != size {
			return nil, fmt.Errorf("preprocess: image %d gives %d values, image 0 gave %d: enable resizing", i, len(px), size)
		}
		size = len(px)
		out = append(out, px...)
	}
	return out, nil
}
