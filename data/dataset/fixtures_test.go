package dataset

import (
	"archive/tar"
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func pngBytes(t *testing.T, v uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := range 4 {
		img.Set(i%2, i/2, color.RGBA{v, v, v, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type member struct {
	name string
	data []byte
}

func writeTar(t *testing.T, path string, ms []member) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

// intSource is an Indexed dataset of n samples keyed "s<i>", whose image
// bytes are one byte i (decodable by decodeByte).
type intSource struct{ n int }

func (s intSource) Len() int { return s.n }
func (s intSource) At(i int) (Sample, error) {
	return Sample{Key: "s" + itoa(i), ImageBytes: []byte{byte(i)}, Index: i}, nil
}
func (s intSource) Open() (Source, error) { return &sliceSource{d: s}, nil }

func itoa(i int) string {
	return string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

// streamOnly hides the Indexed methods of a dataset.
type streamOnly struct{ d Dataset }

func (s streamOnly) Open() (Source, error) { return s.d.Open() }
