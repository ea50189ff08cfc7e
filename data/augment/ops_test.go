package augment

import (
	"math"
	"testing"

	"blip/data/preprocess"
)

func TestIdentityAndUnitFactors(t *testing.T) {
	img := pattern(9, 7)
	for _, c := range []struct {
		name string
		arg  float64
	}{{"Identity", 0}, {"Brightness", 1}, {"Sharpness", 1}} {
		out, err := ApplyOp(img, c.name, c.arg)
		if err != nil {
			t.Fatal(err)
		}
		if !equalImg(out, img) {
			t.Errorf("%s(%v) changed the image", c.name, c.arg)
		}
	}
	// BLIP's M=5 gives enhance factor (5/10)*1.8+0.1 == 1 exactly.
	if f := LevelToArg("Brightness", 5, NewRand(0)); f != 1 {
		t.Fatalf("enhance factor at M=5: %v", f)
	}
	if _, err := ApplyOp(img, "Nope", 0); err == nil {
		t.Fatal("unknown op accepted")
	}
	if err := NewBLIPRandomAugment().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBrightness(t *testing.T) {
	img := &preprocess.RGB{W: 2, H: 1, Pix: []uint8{10, 100, 200, 0, 1, 255}}
	out := Brightness(img, 1.5)
	want := []uint8{15, 150, 255, 0, 1, 255} // 1.5 truncates to 1
	for i := range want {
		if out.Pix[i] != want[i] {
			t.Fatalf("got %v want %v", out.Pix, want)
		}
	}
	if out := Brightness(img, 0); out.Pix[2] != 0 {
		t.Fatal("factor 0 not black")
	}
}

func TestAutoContrast(t *testing.T) {
	img := preprocess.NewRGB(4, 1)
	r := []uint8{50, 60, 100, 150}
	for x := 0; x < 4; x++ {
		img.Pix[3*x] = r[x]
		img.Pix[3*x+1] = 7 // constant channel: unchanged
		img.Pix[3*x+2] = uint8(x * 85)
	}
	out := AutoContrast(img)
	lo, hi := 255, 0
	for x := 0; x < 4; x++ {
		v := int(out.Pix[3*x])
		lo, hi = min(lo, v), max(hi, v)
		if out.Pix[3*x+1] != 7 {
			t.Fatal("constant channel changed")
		}
		if out.Pix[3*x+2] != img.Pix[3*x+2] {
			t.Fatal("full-range channel changed")
		}
	}
	if lo != 0 || hi != 255 {
		t.Fatalf("range %d..%d, want 0..255", lo, hi)
	}
	// PIL: int(60*2.55 - 127.5) = 25, int(100*2.55 - 127.5) = 127.
	if out.Pix[3] != 25 || out.Pix[6] != 127 {
		t.Fatalf("values %d %d", out.Pix[3], out.Pix[6])
	}
}

func TestEqualize(t *testing.T) {
	// 256 pixels crowded in 4 grey levels, 64 each.
	img := preprocess.NewRGB(16, 16)
	for i := 0; i < 256; i++ {
		v := uint8(100 + i/64)
		img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2] = v, v, v
	}
	out := Equalize(img)
	// step = (256 - 64)/255 = 0 -> unchanged (PIL's rule).
	if !equalImg(out, img) {
		t.Fatal("step 0 must leave the image unchanged")
	}
	// 1024 pixels, 4 levels of 256: step = 768/255 = 3;
	// lut[v] = (1 + below)/3 -> 0, 85, 171, 256->255.
	img = preprocess.NewRGB(32, 32)
	for i := 0; i < 1024; i++ {
		v := uint8(100 + i/256)
		img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2] = v, v, v
	}
	out = Equalize(img)
	want := []uint8{0, 85, 171, 255}
	var hist [256]int
	for i := 0; i < 1024; i++ {
		if got := out.Pix[3*i]; got != want[i/256] {
			t.Fatalf("pixel %d: %d want %d", i, got, want[i/256])
		}
		hist[out.Pix[3*i+1]]++
	}
	// The histogram is spread over the range: each level keeps a quarter.
	for _, v := range want {
		if hist[v] != 256 {
			t.Fatalf("histogram %v", hist[v])
		}
	}
}

func TestTranslateMovesMark(t *testing.T) {
	img := marked(10, 8, 7, 3)
	out := TranslateX(img, 5, Fill)
	if px(out, 2, 3) != [3]uint8{255, 255, 255} {
		t.Fatalf("TranslateX(5): mark not at (2,3): %v", px(out, 2, 3))
	}
	if px(out, 1, 3) != [3]uint8{0, 0, 0} || px(out, 7, 3) != Fill {
		t.Fatal("neighbours of the moved mark")
	}
	// The uncovered right columns take the fill colour.
	for x := 5; x < 10; x++ {
		if px(out, x, 0) != Fill {
			t.Fatalf("column %d: %v, want fill", x, px(out, x, 0))
		}
	}
	out = TranslateX(img, -2, Fill)
	if px(out, 9, 3) != [3]uint8{255, 255, 255} {
		t.Fatal("TranslateX(-2)")
	}
	out = TranslateY(img, 3, Fill)
	if px(out, 7, 0) != [3]uint8{255, 255, 255} || px(out, 0, 7) != Fill {
		t.Fatal("TranslateY(3)")
	}
}

func TestShearMovesMark(t *testing.T) {
	img := marked(12, 12, 2, 4)
	out := ShearX(img, 0.5, Fill) // x' = x + 0.5*y = 4
	if px(out, 4, 4) != [3]uint8{255, 255, 255} {
		t.Fatalf("ShearX: %v", px(out, 4, 4))
	}
	if px(out, 0, 11) != Fill { // source x = -5.5
		t.Fatal("ShearX fill")
	}
	img = marked(12, 12, 4, 2)
	out = ShearY(img, 0.5, Fill) // y' = y + 0.5*x = 4
	if px(out, 4, 4) != [3]uint8{255, 255, 255} {
		t.Fatalf("ShearY: %v", px(out, 4, 4))
	}
	// Half-pixel shifts blend bilinearly: row 1 of a ShearX(0.5) of a
	// mark at (3,1) spreads it over x' = 3.5 -> columns 3 and 4 at 128.
	out = ShearX(marked(8, 8, 3, 1), 0.5, Fill)
	if a, b := px(out, 3, 1)[0], px(out, 4, 1)[0]; a != 128 || b != 128 {
		t.Fatalf("bilinear split %d %d", a, b)
	}
}

func TestRotateMovesMark(t *testing.T) {
	// 90 degrees about (4, 4): x' = y, y' = 8 - x (counter-clockwise).
	img := marked(8, 8, 1, 2)
	out := Rotate(img, 90, Fill)
	if px(out, 2, 7) != [3]uint8{255, 255, 255} {
		t.Fatalf("Rotate(90): %v", px(out, 2, 7))
	}
	if px(out, 0, 0) != Fill { // comes from x = 8, outside
		t.Fatalf("Rotate fill: %v", px(out, 0, 0))
	}
	out = Rotate(img, -90, Fill) // x' = 8 - y, y' = x
	if px(out, 6, 1) != [3]uint8{255, 255, 255} {
		t.Fatalf("Rotate(-90): %v", px(out, 6, 1))
	}
	if !equalImg(Rotate(img, 0, Fill), img) {
		t.Fatal("Rotate(0) not identity")
	}
	// 15 degrees (BLIP's M=5) keeps the centre pixel of a uniform image
	// and fills a corner.
	u := preprocess.NewRGB(20, 20)
	for i := range u.Pix {
		u.Pix[i] = 200
	}
	out = Rotate(u, 15, Fill)
	if px(out, 10, 10) != [3]uint8{200, 200, 200} || px(out, 0, 0) != Fill {
		t.Fatalf("Rotate(15): %v %v", px(out, 10, 10), px(out, 0, 0))
	}
}

func TestSharpness(t *testing.T) {
	// A lone bright pixel: degenerate = 5*255/13 = 98 at the centre,
	// 255/13 = 20 (19.6) around it.
	img := preprocess.NewRGB(5, 5)
	i := 3 * (2*5 + 2)
	img.Pix[i], img.Pix[i+1], img.Pix[i+2] = 255, 255, 255
	d := Sharpness(img, 0)
	if d.Pix[i] != 98 || d.Pix[3*(1*5+1)] != 20 || d.Pix[0] != 0 {
		t.Fatalf("degenerate %d %d %d", d.Pix[i], d.Pix[3*6], d.Pix[0])
	}
	s := Sharpness(img, 2) // interior: deg + 2*(img - deg), clamped
	if s.Pix[i] != 255 || s.Pix[3*6] != 0 {
		t.Fatalf("sharpened %d %d", s.Pix[i], s.Pix[3*6])
	}
	s = Sharpness(img, 0.5)
	if s.Pix[i] != 176 { // 98 + 0.5*157 = 176.5 -> 176
		t.Fatalf("half %d", s.Pix[i])
	}
}

func TestLevelToArg(t *testing.T) {
	pos, neg := map[string]float64{}, map[string]float64{}
	for s := 0; s < 200; s++ {
		r := NewRand(uint64(s))
		for _, n := range []string{"ShearX", "TranslateY", "Rotate"} {
			v := LevelToArg(n, 5, r)
			if v > 0 {
				pos[n] = v
			} else {
				neg[n] = v
			}
		}
	}
	want := map[string]float64{"ShearX": 0.15, "TranslateY": 5, "Rotate": 15}
	for n, w := range want {
		if math.Abs(pos[n]-w) > 1e-12 || math.Abs(neg[n]+w) > 1e-12 {
			t.Errorf("%s: +%v -%v, want ±%v", n, pos[n], neg[n], w)
		}
	}
}

func TestRandomAugmentProbabilities(t *testing.T) {
	a := NewBLIPRandomAugment()
	img := pattern(8, 8)
	const n = 4000
	applied := 0
	counts := map[string]int{}
	for s := 0; s < n; s++ {
		_, done := a.Apply(img, NewRand(uint64(s)))
		if len(done) > a.N {
			t.Fatalf("%d ops applied", len(done))
		}
		applied += len(done)
		for _, d := range done {
			counts[d.Name]++
		}
	}
	if p := float64(applied) / (n * float64(a.N)); p < 0.47 || p > 0.53 {
		t.Fatalf("apply rate %v, want ~0.5", p)
	}
	// Each of the 10 ops: expected n*N*0.5/10 = 400.
	for _, name := range BLIPOps {
		if c := counts[name]; c < 320 || c > 480 {
			t.Errorf("%s applied %d times, want ~400", name, c)
		}
	}
	// P = 0 applies nothing, P = 1 everything.
	a.P = 0
	if out, done := a.Apply(img, NewRand(1)); len(done) != 0 || !equalImg(out, img) {
		t.Fatal("P=0 applied an op")
	}
	a.P = 1
	if _, done := a.Apply(img, NewRand(1)); len(done) != a.N {
		t.Fatal("P=1 skipped an op")
	}
}

func TestAutoContrastNumpy(t *testing.T) {
	img := preprocess.NewRGB(3, 1)
	copy(img.Pix, []uint8{50, 0, 9, 60, 100, 9, 150, 200, 9})
	out := AutoContrastNumpy(img)
	// Green: 200*(255/200) is 254.99999999999997 in float64, which int()
	// truncates to 254 in PIL and numpy alike.
	want := []uint8{255, 0, 9, 255, 127, 9, 255, 254, 9}
	for i := range want {
		if out.Pix[i] != want[i] {
			t.Fatalf("got %v want %v", out.Pix, want)
		}
	}
	a := NewBLIPRandomAugment()
	a.Ops, a.P, a.NumpyAutoContrast = []string{"AutoContrast"}, 1, true
	if got, _ := a.Apply(img, NewRand(0)); got.Pix[0] != 255 {
		t.Fatal("option not used")
	}
}
