package shapes

import (
	"fmt"
	"math"
)

// Limits of the settings; Validate explains each one in its error message.
const (
	// GridCells is the side of the layout grid: every object sits in its
	// own cell of a GridCells x GridCells grid.
	GridCells = 3
	// MaxObjectsLimit is the most objects an image can hold: the largest
	// set of cells of the 3x3 grid with no two on a common diagonal (four
	// non-attacking bishops). A diagonal pair would be as much "left of" as
	// "above", so it is never drawn.
	MaxObjectsLimit = 2*GridCells - 2
	// MinImageSize keeps a small object at least 7 pixels wide, below which
	// a star or a heart is no longer recognisable.
	MinImageSize = 48
	// MaxImageSize bounds memory and time per image.
	MaxImageSize = 1024
	// MaxCaptions is the number of caption templates for each kind of
	// image, so every paraphrase of an image uses a different template.
	MaxCaptions = 6
	// MaxSupersample bounds the anti-aliasing samples per pixel side.
	MaxSupersample = 8
	// MaxCaptionWords is the longest caption generated: BLIP's pretraining
	// tokenises captions to 30 tokens, [CLS] and [SEP] included, and every
	// word of this world is a single token.
	MaxCaptionWords = 28
)

// Config holds the generator settings. Setting names in error messages are
// the CLI flag names (n, seed, size, max-objects, noise, ...).
type Config struct {
	N          int   `json:"n"`           // number of images, all splits together
	Seed       int64 `json:"seed"`        // same seed, same bytes
	Size       int   `json:"size"`        // image width and height in pixels
	MaxObjects int   `json:"max_objects"` // K: each image holds 1..K objects, uniformly
	// Noise in [0, 1] scales a smooth background texture (+-20 at 1) and
	// per-pixel noise (+-12 at 1); at 1 every colour still stands at least
	// 70 RGB units from the textured background.
	Noise       float64 `json:"noise"`
	Shapes      []Shape `json:"shapes"`      // shapes used; nil means all
	Colors      []Color `json:"colors"`      // colours used; nil means all
	Captions    int     `json:"captions"`    // paraphrases per image, 1..MaxCaptions
	Supersample int     `json:"supersample"` // anti-aliasing: samples per pixel side
	// Train, Val and Test are the split fractions; they must sum to 1.
	// Val and test sizes are rounded, train takes the rest.
	Train float64 `json:"train"`
	Val   float64 `json:"val"`
	Test  float64 `json:"test"`
}

// DefaultConfig returns the default settings: 1000 images of 64x64 px
// with 1 to 3 objects, 5 paraphrases each, no noise, 4x4 supersampling, an
// 80/10/10 split, seed 1.
func DefaultConfig() Config {
	return Config{
		N: 1000, Seed: 1, Size: 64, MaxObjects: 3, Captions: 5, Supersample: 4,
		Train: 0.8, Val: 0.1, Test: 0.1,
	}
}

// SettingError is an impossible or malformed setting.
type SettingError struct {
	Setting string // the setting's CLI name, e.g. "max-objects"
	Msg     string
}

// Error implements error.
func (e *SettingError) Error() string { return "shapes: " + e.Setting + ": " + e.Msg }

func settingErr(setting, format string, args ...any) error {
	return &SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
}

// shapes returns the shapes in use.
func (c *Config) shapes() []Shape {
	if len(c.Shapes) == 0 {
		return allShapes
	}
	return c.Shapes
}

// colors returns the colours in use.
func (c *Config) colors() []Color {
	if len(c.Colors) == 0 {
		return allColors
	}
	return c.Colors
}

// Validate reports the first impossible setting, naming it.
func (c *Config) Validate() error {
	if c.N < 1 {
		return settingErr("n", "%d images: need at least 1", c.N)
	}
	if c.Size < MinImageSize {
		return settingErr("size", "%d px is too small: a small object would be %.1f px wide; need at least %d px",
			c.Size, smallFrac*float64(c.Size)/GridCells, MinImageSize)
	}
	if c.Size > MaxImageSize {
		return settingErr("size", "%d px is too large: at most %d px", c.Size, MaxImageSize)
	}
	if c.MaxObjects < 1 {
		return settingErr("max-objects", "%d: every image holds at least 1 object", c.MaxObjects)
	}
	if c.MaxObjects > MaxObjectsLimit {
		return settingErr("max-objects", "%d objects do not fit: at most %d objects fit on the %dx%d layout grid with no two on a diagonal (so every pair is clearly left/right or above/below) and captions stay within %d words",
			c.MaxObjects, MaxObjectsLimit, GridCells, GridCells, MaxCaptionWords)
	}
	if math.IsNaN(c.Noise) || c.Noise < 0 || c.Noise > 1 {
		return settingErr("noise", "%v: must be between 0 and 1", c.Noise)
	}
	if err := checkSet("shapes", c.Shapes, Shape.Valid); err != nil {
		return err
	}
	if err := checkSet("colors", c.Colors, Color.Valid); err != nil {
		return err
	}
	if kinds := len(c.shapes()) * len(c.colors()) * len(allSizes); kinds < c.MaxObjects {
		// Objects of one image differ in (size, colour, shape), so that
		// every caption can name each of them.
		return settingErr("max-objects", "%d: only %d distinct (size, colour, shape) objects exist with %d shapes and %d colours",
			c.MaxObjects, kinds, len(c.shapes()), len(c.colors()))
	}
	if c.Captions < 1 || c.Captions > MaxCaptions {
		return settingErr("captions", "%d: need 1 to %d paraphrases per image", c.Captions, MaxCaptions)
	}
	if c.Supersample < 1 || c.Supersample > MaxSupersample {
		return settingErr("supersample", "%d: need 1 to %d samples per pixel side", c.Supersample, MaxSupersample)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"train", c.Train}, {"val", c.Val}, {"test", c.Test}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return settingErr(f.name, "fraction %v: must be between 0 and 1", f.v)
		}
	}
	if s := c.Train + c.Val + c.Test; math.Abs(s-1) > 1e-9 {
		return settingErr("train", "split fractions train %v + val %v + test %v = %v: must sum to 1", c.Train, c.Val, c.Test, s)
	}
	return nil
}

// checkSet validates an attribute subset: known names, no repeats.
func checkSet[T ~string](name string, xs []T, valid func(T) bool) error {
	seen := map[T]bool{}
	for _, x := range xs {
		if !valid(x) {
			return settingErr(name, "unknown value %q", string(x))
		}
		if seen[x] {
			return settingErr(name, "%q given twice", string(x))
		}
		seen[x] = true
	}
	return nil
}

// splitSizes returns the number of train, val and test images.
func (c *Config) splitSizes() (train, val, test int) {
	val = int(math.Round(float64(c.N) * c.Val))
	test = int(math.Round(float64(c.N) * c.Test))
	if val+test > c.N { // both rounded up past N
		test = c.N - val
	}
	return c.N - val - test, val, test
}
