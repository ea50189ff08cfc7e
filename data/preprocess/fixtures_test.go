package preprocess

import (
	"bufio"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// fixtureDir holds inputs and Pillow's outputs for them, made by
// testdata/preprocess/make_fixtures.py.
var fixtureDir = filepath.Join("..", "..", "testdata", "preprocess")

// loadWant reads an expected 8-bit RGB PNG written by Pillow.
func loadWant(t *testing.T, name string) *RGB {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ToRGB(img)
}

// compareRGB reports the number of differing bytes and the largest
// difference.
func compareRGB(got, want *RGB) (int, int, error) {
	if got.W != want.W || got.H != want.H {
		return 0, 0, fmt.Errorf("size %dx%d, want %dx%d", got.W, got.H, want.W, want.H)
	}
	n, m := 0, 0
	for i := range got.Pix {
		d := int(got.Pix[i]) - int(want.Pix[i])
		if d < 0 {
			d = -d
		}
		if d != 0 {
			n++
			m = max(m, d)
		}
	}
	return n, m, nil
}

// TestDecodeMatchesPillow decodes every fixture and compares with
// Image.open(f).convert("RGB") from Pillow (libjpeg-turbo for JPEG).
func TestDecodeMatchesPillow(t *testing.T) {
	names := []string{
		"j420.jpg", "j422.jpg", "j444.jpg", "jprog.jpg", "jgray.jpg", "jtiny.jpg",
		"jcmyk.jpg", "jycck.jpg", "jcmyk_noadobe.jpg",
		"g1.png", "g2.png", "g4.png", "g8.png", "g16.png", "g16small.png", "g8trns.png",
		"ga8.png", "ga16.png", "rgb16.png", "rgb16trns.png", "rgba8.png", "rgba16.png",
		"p4.png", "p8trns.png", "trans.gif", "offset.gif",
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			got, err := Load(filepath.Join(fixtureDir, name))
			if err != nil {
				t.Fatal(err)
			}
			n, m, err := compareRGB(got, loadWant(t, name+".want.png"))
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d bytes differ from Pillow, max difference %d", n, m)
			}
		})
	}
}

// TestResizeMatchesPillow compares Resize with Image.resize for several
// sizes (down, up, one axis only) and every filter.
func TestResizeMatchesPillow(t *testing.T) {
	src := loadWant(t, "resize_src.png")
	f, err := os.Open(filepath.Join(fixtureDir, "resize_cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	cases := 0
	for sc.Scan() {
		var w, h, flt int
		var name string
		if _, err := fmt.Sscan(sc.Text(), &w, &h, &flt, &name); err != nil {
			t.Fatalf("resize_cases.txt: %v", err)
		}
		cases++
		t.Run(name, func(t *testing.T) {
			got, err := Resize(src, w, h, Filter(flt))
			if err != nil {
				t.Fatal(err)
			}
			n, m, err := compareRGB(got, loadWant(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%v %dx%d: %d bytes differ from Pillow, max difference %d", Filter(flt), w, h, n, m)
			}
		})
	}
	if cases < 10 {
		t.Fatalf("only %d resize cases", cases)
	}
}
