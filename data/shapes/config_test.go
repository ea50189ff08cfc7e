package shapes

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Impossible settings are errors that name the setting.
func TestImpossibleSettings(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Config)
		setting string
		text    string
	}{
		{"zero images", func(c *Config) { c.N = 0 }, "n", "need at least 1"},
		{"negative images", func(c *Config) { c.N = -3 }, "n", "-3 images"},
		{"K zero", func(c *Config) { c.MaxObjects = 0 }, "max-objects", "at least 1 object"},
		{"K too many", func(c *Config) { c.MaxObjects = 5 }, "max-objects", "at most 4 objects fit"},
		{"size too small", func(c *Config) { c.Size = 32 }, "size", "need at least 48 px"},
		{"size zero", func(c *Config) { c.Size = 0 }, "size", "too small"},
		{"size too large", func(c *Config) { c.Size = 5000 }, "size", "too large"},
		{"noise negative", func(c *Config) { c.Noise = -0.1 }, "noise", "between 0 and 1"},
		{"noise NaN", func(c *Config) { c.Noise = math.NaN() }, "noise", "between 0 and 1"},
		{"noise above 1", func(c *Config) { c.Noise = 2 }, "noise", "between 0 and 1"},
		{"no captions", func(c *Config) { c.Captions = 0 }, "captions", "1 to 6"},
		{"too many captions", func(c *Config) { c.Captions = 7 }, "captions", "1 to 6"},
		{"supersample", func(c *Config) { c.Supersample = 0 }, "supersample", "1 to 8"},
		{"unknown shape", func(c *Config) { c.Shapes = []Shape{"circle", "blob"} }, "shapes", `"blob"`},
		{"repeated colour", func(c *Config) { c.Colors = []Color{"red", "red"} }, "colors", "twice"},
		{"too few kinds", func(c *Config) {
			c.Shapes, c.Colors, c.MaxObjects = []Shape{Circle}, []Color{Red}, 3
		}, "max-objects", "only 2 distinct"},
		{"fractions sum", func(c *Config) { c.Train, c.Val, c.Test = 0.8, 0.3, 0.1 }, "train", "sum to 1"},
		{"negative fraction", func(c *Config) { c.Val = -0.1 }, "val", "between 0 and 1"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		var se *SettingError
		if !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a *SettingError", tc.name, err)
			continue
		}
		if se.Setting != tc.setting || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), tc.setting) {
			t.Errorf("%s: got %q (setting %q), want setting %q and %q", tc.name, err, se.Setting, tc.setting, tc.text)
		}
		if _, gerr := Generate(c); gerr == nil {
			t.Errorf("%s: Generate accepted the settings", tc.name)
		}
	}
}

func TestSplitSizes(t *testing.T) {
	cases := []struct {
		n                      int
		tr, va, te             float64
		wantTr, wantVa, wantTe int
	}{
		{1000, 0.8, 0.1, 0.1, 800, 100, 100},
		{1, 0.8, 0.1, 0.1, 1, 0, 0},
		{3, 0, 0.5, 0.5, 0, 2, 1},
		{7, 1, 0, 0, 7, 0, 0},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		c.N, c.Train, c.Val, c.Test = tc.n, tc.tr, tc.va, tc.te
		tr, va, te := c.splitSizes()
		if tr != tc.wantTr || va != tc.wantVa || te != tc.wantTe || tr+va+te != tc.n {
			t.Errorf("n=%d %v/%v/%v: got %d/%d/%d, want %d/%d/%d", tc.n, tc.tr, tc.va, tc.te, tr, va, te, tc.wantTr, tc.wantVa, tc.wantTe)
		}
	}
}
