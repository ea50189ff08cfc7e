package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encodePNG encodes img with Go's encoder.
func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// decodeBytes decodes data with the default decoder.
func decodeBytes(t *testing.T, data []byte) *RGB {
	t.Helper()
	img, err := Decoder{}.Decode("test", data)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func checkPixel(t *testing.T, img *RGB, x, y int, want [3]uint8) {
	t.Helper()
	r, g, b := img.RGBAt(x, y)
	if [3]uint8{r, g, b} != want {
		t.Errorf("pixel (%d,%d) = %v, want %v", x, y, [3]uint8{r, g, b}, want)
	}
}

// TestGoEncodedPNGs covers each PNG path with images made by Go's encoder.
func TestGoEncodedPNGs(t *testing.T) {
	t.Run("gray8", func(t *testing.T) {
		m := image.NewGray(image.Rect(0, 0, 3, 2))
		m.SetGray(1, 0, color.Gray{77})
		got := decodeBytes(t, encodePNG(t, m))
		checkPixel(t, got, 1, 0, [3]uint8{77, 77, 77})
		checkPixel(t, got, 0, 0, [3]uint8{0, 0, 0})
	})
	t.Run("gray16 saturates like Pillow I;16", func(t *testing.T) {
		m := image.NewGray16(image.Rect(0, 0, 3, 1))
		m.SetGray16(0, 0, color.Gray16{200})
		m.SetGray16(1, 0, color.Gray16{256})
		m.SetGray16(2, 0, color.Gray16{0x1234})
		got := decodeBytes(t, encodePNG(t, m))
		checkPixel(t, got, 0, 0, [3]uint8{200, 200, 200})
		checkPixel(t, got, 1, 0, [3]uint8{255, 255, 255})
		checkPixel(t, got, 2, 0, [3]uint8{255, 255, 255})
	})
	t.Run("rgba64 keeps the high byte", func(t *testing.T) {
		m := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
		m.SetNRGBA64(0, 0, color.NRGBA64{0x12ff, 0x3400, 0xfe80, 0x8000})
		got := decodeBytes(t, encodePNG(t, m))
		checkPixel(t, got, 0, 0, [3]uint8{0x12, 0x34, 0xfe})
	})
	t.Run("alpha dropped without compositing", func(t *testing.T) {
		m := image.NewNRGBA(image.Rect(0, 0, 2, 1))
		m.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 0})
		m.SetNRGBA(1, 0, color.NRGBA{200, 100, 50, 128})
		got := decodeBytes(t, encodePNG(t, m))
		checkPixel(t, got, 0, 0, [3]uint8{10, 20, 30})
		checkPixel(t, got, 1, 0, [3]uint8{200, 100, 50})
	})
	t.Run("palette with transparency", func(t *testing.T) {
		pal := color.Palette{color.NRGBA{1, 2, 3, 255}, color.NRGBA{90, 80, 70, 0}, color.NRGBA{9, 8, 7, 100}}
		m := image.NewPaletted(image.Rect(0, 0, 3, 1), pal)
		m.SetColorIndex(1, 0, 1)
		m.SetColorIndex(2, 0, 2)
		got := decodeBytes(t, encodePNG(t, m))
		checkPixel(t, got, 0, 0, [3]uint8{1, 2, 3})
		checkPixel(t, got, 1, 0, [3]uint8{90, 80, 70})
		checkPixel(t, got, 2, 0, [3]uint8{9, 8, 7})
	})
}

func TestGoEncodedJPEGAndGIF(t *testing.T) {
	m := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range m.Pix {
		m.Pix[i] = 100
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	got := decodeBytes(t, b.Bytes())
	checkPixel(t, got, 5, 5, [3]uint8{100, 100, 100})

	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	p := image.NewPaletted(image.Rect(0, 0, 4, 4), pal)
	p.SetColorIndex(2, 3, 1)
	b.Reset()
	if err := gif.Encode(&b, p, nil); err != nil {
		t.Fatal(err)
	}
	got = decodeBytes(t, b.Bytes())
	checkPixel(t, got, 0, 0, [3]uint8{255, 0, 0})
	checkPixel(t, got, 2, 3, [3]uint8{0, 0, 255})
}

func TestCMYKToRGB(t *testing.T) {
	cases := []struct{ c, m, y, k, r, g, b uint8 }{
		{0, 0, 0, 0, 255, 255, 255},
		{255, 255, 255, 0, 0, 0, 0},
		{0, 0, 0, 255, 0, 0, 0},
		{255, 0, 128, 0, 0, 255, 127},
		{100, 50, 0, 100, 94, 125, 155},
	}
	for _, c := range cases {
		r, g, b := CMYKToRGB(c.c, c.m, c.y, c.k)
		if r != c.r || g != c.g || b != c.b {
			t.Errorf("CMYK(%d,%d,%d,%d) = %d,%d,%d, want %d,%d,%d", c.c, c.m, c.y, c.k, r, g, b, c.r, c.g, c.b)
		}
	}
	// Against the exact rounding definition nk - round(v*nk/255).
	for v := 0; v < 256; v++ {
		for k := 0; k < 256; k++ {
			nk := 255 - k
			want := nk - (2*v*nk+255)/510
			if r, _, _ := CMYKToRGB(uint8(v), 0, 0, uint8(k)); int(r) != want {
				t.Fatalf("c=%d k=%d: %d, want %d", v, k, r, want)
			}
		}
	}
}

// setPNGSize rewrites the IHDR dimensions of a PNG and fixes its CRC.
func setPNGSize(data []byte, w, h uint32) []byte {
	d := append([]byte(nil), data...)
	binary.BigEndian.PutUint32(d[16:], w)
	binary.BigEndian.PutUint32(d[20:], h)
	binary.BigEndian.PutUint32(d[29:], crc32.ChecksumIEEE(d[12:29]))
	return d
}

func TestPixelLimit(t *testing.T) {
	small := encodePNG(t, image.NewGray(image.Rect(0, 0, 7, 5)))
	if _, err := (Decoder{MaxPixels: 34}).Decode("small.png", small); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("35 pixels with limit 34: %v", err)
	}
	if _, err := (Decoder{MaxPixels: 35}).Decode("small.png", small); err != nil {
		t.Errorf("35 pixels with limit 35: %v", err)
	}
	// A header claiming 100000 x 100000 is refused before decoding.
	bomb := setPNGSize(small, 100000, 100000)
	_, err := Decoder{}.Decode("bomb.png", bomb)
	if !errors.Is(err, ErrTooManyPixels) || !strings.Contains(err.Error(), "bomb.png") {
		t.Errorf("PNG bomb: %v", err)
	}
	// The same for JPEG (SOF dimensions) and GIF (screen size).
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	jd := jb.Bytes()
	sof := bytes.Index(jd, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(jd[sof+5:], 60000)
	binary.BigEndian.PutUint16(jd[sof+7:], 60000)
	if _, err := (Decoder{}).Decode("bomb.jpg", jd); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("JPEG bomb: %v", err)
	}
	var gb bytes.Buffer
	gif.Encode(&gb, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black}), nil)
	gd := gb.Bytes()
	binary.LittleEndian.PutUint16(gd[6:], 65535)
	binary.LittleEndian.PutUint16(gd[8:], 65535)
	if _, err := (Decoder{MaxPixels: 1 << 30}).Decode("bomb.gif", gd); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("GIF bomb: %v", err)
	}
	// No limit.
	if _, err := (Decoder{MaxPixels: -1}).Decode("small.png", small); err != nil {
		t.Error(err)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	photo, err := os.ReadFile(filepath.Join(goldenDir, "images", "rocket.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	pngData, err := os.ReadFile(filepath.Join(goldenDir, "images", "chelsea.png"))
	if err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	gif.Encode(&gb, image.NewPaletted(image.Rect(0, 0, 40, 40), color.Palette{color.Black, color.White}), nil)
	cases := []struct {
		name string
		data []byte
		is   error
	}{
		{"empty.png", nil, ErrUnknownFormat},
		{"text.jpg", []byte("this is not an image at all"), ErrUnknownFormat},
		{"truncated.jpg", photo[:len(photo)/2], ErrTruncated},
		{"header-only.jpg", photo[:300], ErrTruncated},
		{"truncated.png", pngData[:len(pngData)/2], ErrTruncated},
		{"header-only.png", pngData[:20], nil},
		{"truncated.gif", gb.Bytes()[:gb.Len()-8], ErrTruncated},
		{"garbage.jpg", append([]byte{0xff, 0xd8, 0xff, 0xc0, 0, 3}, bytes.Repeat([]byte{0x55}, 64)...), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil {
				t.Fatal("decoded a bad file")
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.png")); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
}

func TestToRGBGeneric(t *testing.T) {
	// Premultiplied RGBA is un-premultiplied; alpha is dropped.
	m := image.NewRGBA(image.Rect(0, 0, 1, 1))
	m.SetRGBA(0, 0, color.RGBA{50, 25, 0, 128})
	got := ToRGB(m)
	checkPixel(t, got, 0, 0, [3]uint8{99, 49, 0})
	// A sub-image keeps its own origin.
	g := image.NewGray(image.Rect(0, 0, 4, 4))
	g.SetGray(2, 3, color.Gray{9})
	sub := g.SubImage(image.Rect(2, 2, 4, 4))
	got = ToRGB(sub)
	if got.W != 2 || got.H != 2 {
		t.Fatalf("size %dx%d", got.W, got.H)
	}
	checkPixel(t, got, 0, 1, [3]uint8{9, 9, 9})
	// CMYK: no ink is white.
	c := image.NewCMYK(image.Rect(0, 0, 1, 1))
	checkPixel(t, ToRGB(c), 0, 0, [3]uint8{255, 255, 255})
	// RGB implements image.Image.
	if got.At(0, 1) != (color.RGBA{9, 9, 9, 255}) || got.Bounds() != image.Rect(0, 0, 2, 2) {
		t.Error("At/Bounds")
	}
}
