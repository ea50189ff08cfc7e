package augment

import (
	"math"
	"testing"

	"blip/data/preprocess"
)

// pattern builds a w x h image with distinct, position-dependent pixels.
func pattern(w, h int) *preprocess.RGB {
	m := preprocess.NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * (y*w + x)
			m.Pix[i] = uint8(x * 7 % 256)
			m.Pix[i+1] = uint8(y * 11 % 256)
			m.Pix[i+2] = uint8((x*3 + y*5) % 256)
		}
	}
	return m
}

// marked builds a w x h black image with a white pixel at (mx, my).
func marked(w, h, mx, my int) *preprocess.RGB {
	m := preprocess.NewRGB(w, h)
	i := 3 * (my*w + mx)
	m.Pix[i], m.Pix[i+1], m.Pix[i+2] = 255, 255, 255
	return m
}

func px(m *preprocess.RGB, x, y int) [3]uint8 {
	r, g, b := m.RGBAt(x, y)
	return [3]uint8{r, g, b}
}

func equalImg(a, b *preprocess.RGB) bool {
	if a.W != b.W || a.H != b.H {
		return false
	}
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			return false
		}
	}
	return true
}

func TestCropBoxesFollowTorchvisionRules(t *testing.T) {
	for _, minScale := range []float64{PretrainMinScale, FinetuneMinScale} {
		c := NewRandomResizedCrop(32, minScale)
		for _, sz := range [][2]int{{200, 150}, {64, 64}, {300, 40}, {17, 90}} {
			W, H := sz[0], sz[1]
			area := float64(W * H)
			fallbacks := 0
			for s := 0; s < 500; s++ {
				b := c.Params(W, H, NewRand(uint64(s)))
				if b.W <= 0 || b.H <= 0 || b.I < 0 || b.J < 0 || b.I+b.H > H || b.J+b.W > W {
					t.Fatalf("%dx%d: box %+v out of bounds", W, H, b)
				}
				if b == c.Fallback(W, H) {
					fallbacks++
					continue
				}
				// An accepted box is the rounding of sqrt(A*r), sqrt(A/r):
				// its area and ratio lie in the bounds up to rounding.
				a := float64(b.W * b.H)
				lo := minScale*area - float64(b.W+b.H) - 1
				hi := area + float64(b.W+b.H) + 1
				if a < lo || a > hi {
					t.Fatalf("%dx%d: area %v outside [%v, %v]", W, H, a, lo, hi)
				}
				r := float64(b.W) / float64(b.H)
				rlo := (float64(b.W) - 0.5) / (float64(b.H) + 0.5)
				rhi := (float64(b.W) + 0.5) / (float64(b.H) - 0.5)
				if rhi < 3.0/4 || rlo > 4.0/3 {
					t.Fatalf("%dx%d: ratio %v cannot come from [3/4, 4/3]", W, H, r)
				}
			}
			if W == 200 && fallbacks > 0 {
				t.Fatalf("200x150: %d fallbacks, a fitting draw is always found", fallbacks)
			}
		}
	}
}

func TestCropFixedScaleAndRatio(t *testing.T) {
	c := NewRandomResizedCrop(8, 0.25)
	c.MaxScale, c.MinRatio, c.MaxRatio = 0.25, 1, 1
	seen := map[int]bool{}
	for s := 0; s < 300; s++ {
		b := c.Params(100, 80, NewRand(uint64(s)))
		// sqrt(0.25*8000) = 44.72 -> 45 on both sides.
		if b.W != 45 || b.H != 45 || b.I > 80-45 || b.J > 100-45 {
			t.Fatalf("box %+v", b)
		}
		seen[b.I] = true
	}
	if !seen[0] || !seen[35] {
		t.Fatal("offsets do not cover [0, height-h]")
	}
}

func TestCropFallback(t *testing.T) {
	c := NewRandomResizedCrop(32, 0.5)
	// Very wide: ratio 1000/10 > 4/3: h = 10, w = round(10*4/3) = 13.
	if got, want := c.Fallback(1000, 10), (Box{I: 0, J: (1000 - 13) / 2, H: 10, W: 13}); got != want {
		t.Fatalf("wide fallback %+v, want %+v", got, want)
	}
	// Very tall: w = 10, h = round(10/(3/4)) = 13.
	if got, want := c.Fallback(10, 1000), (Box{I: (1000 - 13) / 2, J: 0, H: 13, W: 10}); got != want {
		t.Fatalf("tall fallback %+v, want %+v", got, want)
	}
	// In range: whole image.
	if got, want := c.Fallback(100, 90), (Box{H: 90, W: 100}); got != want {
		t.Fatalf("fallback %+v, want %+v", got, want)
	}
	// A 1000x10 image never fits a drawn box with scale >= 0.5 (it needs
	// h >= sqrt(5000*3/4) > 10), so Params always falls back.
	for s := 0; s < 50; s++ {
		if b := c.Params(1000, 10, NewRand(uint64(s))); b != c.Fallback(1000, 10) {
			t.Fatalf("seed %d: got %+v, want the fallback", s, b)
		}
	}
	// Zero attempts go straight to the fallback.
	c.Attempts = 0
	if b := c.Params(100, 90, NewRand(1)); b != (Box{H: 90, W: 100}) {
		t.Fatalf("no attempts: %+v", b)
	}
}

func TestRoundHalfEven(t *testing.T) {
	for in, want := range map[float64]int{0.5: 0, 1.5: 2, 2.5: 2, 13.3333: 13, 12.5: 12} {
		if got := roundHalfEven(in); got != want {
			t.Errorf("round(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestCropResizeMatchesPreprocess(t *testing.T) {
	img := pattern(60, 40)
	c := NewRandomResizedCrop(24, 0.2)
	b := c.Params(img.W, img.H, NewRand(7))
	got, err := c.Apply(img, NewRand(7))
	if err != nil {
		t.Fatal(err)
	}
	want, err := preprocess.Resize(Crop(img, b), 24, 24, preprocess.Bicubic)
	if err != nil {
		t.Fatal(err)
	}
	if !equalImg(got, want) {
		t.Fatal("crop+resize differs from preprocess.Resize of the crop")
	}
	cr := Crop(img, Box{I: 3, J: 5, H: 4, W: 6})
	if px(cr, 0, 0) != px(img, 5, 3) || px(cr, 5, 3) != px(img, 10, 6) {
		t.Fatal("crop copies the wrong pixels")
	}
}

func TestHFlip(t *testing.T) {
	img := pattern(7, 5)
	f := HFlip(img)
	for y := 0; y < 5; y++ {
		for x := 0; x < 7; x++ {
			if px(f, x, y) != px(img, 6-x, y) {
				t.Fatalf("flip (%d,%d)", x, y)
			}
		}
	}
	if !equalImg(HFlip(f), img) {
		t.Fatal("flip twice is not identity")
	}
}

func TestSeedDeterminism(t *testing.T) {
	img := pattern(80, 60)
	tr := NewTrain(32, PretrainMinScale)
	a, err := tr.Apply(img, SampleSeed(1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tr.Apply(img, SampleSeed(1, 2, 3))
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different output")
		}
	}
	seeds := []uint64{SampleSeed(1, 2, 4), SampleSeed(1, 3, 3), SampleSeed(2, 2, 3)}
	for _, s := range seeds {
		c, _ := tr.Apply(img, s)
		same := true
		for i := range a {
			if a[i] != c[i] {
				same = false
				break
			}
		}
		if same {
			t.Fatalf("seed %d gives the same output as another seed", s)
		}
	}
	if SampleSeed(0, 0, 1) == SampleSeed(0, 1, 0) {
		t.Fatal("seed collision between epoch and index")
	}
}

func TestShapesAndNormalisation(t *testing.T) {
	img := pattern(50, 30)
	for _, tr := range []*Transform{NewTrain(24, FinetuneMinScale), NewTest(24)} {
		out, err := tr.Apply(img, 9)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 3*24*24 {
			t.Fatalf("len %d", len(out))
		}
		for _, v := range out {
			if math.IsNaN(float64(v)) || v < -2 || v > 2.2 {
				t.Fatalf("value %v out of the normalised range", v)
			}
		}
	}
	// Test transform = bicubic resize + normalisation, CHW.
	tr := NewTest(16)
	out, _ := tr.Apply(img, 0)
	r, _ := preprocess.Resize(img, 16, 16, preprocess.Bicubic)
	for c := 0; c < 3; c++ {
		for i := 0; i < 16*16; i++ {
			want := (float32(r.Pix[3*i+c])/255 - float32(preprocess.ClipMean[c])) / float32(preprocess.ClipStd[c])
			if out[c*256+i] != want {
				t.Fatalf("c %d i %d: %v want %v", c, i, out[c*256+i], want)
			}
		}
	}
	// Known values: black and white on channel 0.
	n := Normalize(&preprocess.RGB{W: 2, H: 1, Pix: []uint8{0, 0, 0, 255, 255, 255}}, preprocess.ClipMean, preprocess.ClipStd)
	if math.Abs(float64(n[0])+0.48145466/0.26862954) > 1e-5 || math.Abs(float64(n[1])-(1-0.48145466)/0.26862954) > 1e-5 {
		t.Fatalf("normalise: %v", n)
	}
	if _, err := NewTest(0).Apply(img, 0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func TestTrainFlipProbability(t *testing.T) {
	// A symmetric-free image, no crop randomness (scale 1 and ratio of
	// the image), no augmentation: the output is the resize or its flip.
	img := pattern(40, 40)
	tr := NewTrain(20, 1)
	tr.Crop.MinRatio, tr.Crop.MaxRatio = 1, 1
	tr.Aug = nil
	plain, _ := preprocess.Resize(img, 20, 20, preprocess.Bicubic)
	flipped := HFlip(plain)
	nf := 0
	const n = 2000
	for s := 0; s < n; s++ {
		m, err := tr.Image(img, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case equalImg(m, flipped):
			nf++
		case !equalImg(m, plain):
			t.Fatal("output neither plain nor flipped")
		}
	}
	if f := float64(nf) / n; f < 0.45 || f > 0.55 {
		t.Fatalf("flip rate %v", f)
	}
}
