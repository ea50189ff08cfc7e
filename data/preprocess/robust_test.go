package preprocess

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestCorruptedFixturesDoNotPanic feeds truncated and byte-flipped versions
// of every fixture to the decoder: errors are fine, panics are not.
func TestCorruptedFixturesDoNotPanic(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	n := 0
	for _, f := range files {
		if filepath.Ext(f) == ".txt" || filepath.Ext(f) == ".py" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 30; i++ {
			d := append([]byte(nil), data...)
			if i%3 == 0 {
				d = d[:rng.Intn(len(d))]
			} else {
				for k := 0; k < 1+rng.Intn(4); k++ {
					d[rng.Intn(len(d))] = byte(rng.Intn(256))
				}
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s variant %d: panic: %v", filepath.Base(f), i, r)
					}
				}()
				Decoder{MaxPixels: 1 << 22}.Decode(f, d)
				n++
			}()
		}
	}
	if n == 0 {
		t.Fatal("no fixtures")
	}
}
