package index

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePNG writes a w x h PNG of one colour.
func writePNG(t *testing.T, p string, w, h int, c color.RGBA) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = c.R, c.G, c.B, 255
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// fakeEmbedder embeds an image as its normalised mean colour and width
// (dim 4) and counts the images it saw.
type fakeEmbedder struct {
	calls, images int
	failAfter     int // fail once this many images were embedded (0: never)
}

func (e *fakeEmbedder) embed(imgs []image.Image) ([]float32, error) {
	if e.failAfter > 0 && e.images >= e.failAfter {
		return nil, errors.New("device lost")
	}
	e.calls++
	e.images += len(imgs)
	var out []float32
	for _, img := range imgs {
		r, g, b, _ := img.At(0, 0).RGBA()
		v := []float64{float64(r) + 1, float64(g) + 1, float64(b) + 1, float64(img.Bounds().Dx())}
		var n float64
		for _, x := range v {
			n += x * x
		}
		for _, x := range v {
			out = append(out, float32(x/math.Sqrt(n)))
		}
	}
	return out, nil
}

func build(t *testing.T, root, out string, e *fakeEmbedder, fp string) (*Index, Stats, error) {
	t.Helper()
	return Build(context.Background(), BuildOptions{Root: root, Out: out, Model: "fake", Fingerprint: fp, Dim: 4, Batch: 2}, e.embed)
}

// Build embeds every image, then on re-runs only new and changed ones; it
// drops removed files, remembers unreadable ones, and rebuilds for
// another model.
func TestBuildIncremental(t *testing.T) {
	root, out := t.TempDir(), filepath.Join(t.TempDir(), "photos.idx")
	writePNG(t, filepath.Join(root, "a.png"), 4, 4, color.RGBA{255, 0, 0, 255})
	writePNG(t, filepath.Join(root, "b.png"), 5, 5, color.RGBA{0, 255, 0, 255})
	writePNG(t, filepath.Join(root, "sub", "c.png"), 6, 6, color.RGBA{0, 0, 255, 255})
	writePNG(t, filepath.Join(root, ".hidden", "d.png"), 6, 6, color.RGBA{0, 0, 255, 255})
	os.WriteFile(filepath.Join(root, "notes.txt"), []byte("not an image"), 0o644)
	os.WriteFile(filepath.Join(root, "broken.jpg"), []byte("not a jpeg"), 0o644)
	os.Symlink(filepath.Join(root, "a.png"), filepath.Join(root, "link.png"))

	e := &fakeEmbedder{}
	ix, st, err := build(t, root, out, e, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Files: 4, Embedded: 3, Failed: 1}) || e.images != 3 || ix.Len() != 3 || len(ix.Failed) != 1 {
		t.Fatalf("first run: %+v, %d embedded, index %d + %d failed", st, e.images, ix.Len(), len(ix.Failed))
	}
	if got := []string{ix.Entries[0].Path, ix.Entries[1].Path, ix.Entries[2].Path}; strings.Join(got, ",") != "a.png,b.png,sub/c.png" {
		t.Errorf("entries %v", got)
	}

	// Nothing changed: nothing is embedded.
	e = &fakeEmbedder{}
	if _, st, err = build(t, root, out, e, "m1"); err != nil || e.images != 0 || st.Reused != 3 || st.Failed != 1 {
		t.Fatalf("second run: %+v %v, %d embedded", st, err, e.images)
	}

	// A changed file (size and time), a new one, a removed one.
	writePNG(t, filepath.Join(root, "b.png"), 9, 9, color.RGBA{0, 255, 0, 255})
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(root, "b.png"), future, future)
	writePNG(t, filepath.Join(root, "e.png"), 3, 3, color.RGBA{9, 9, 9, 255})
	os.Remove(filepath.Join(root, "sub", "c.png"))
	e = &fakeEmbedder{}
	ix, st, err = build(t, root, out, e, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Files: 4, Reused: 1, Embedded: 2, Failed: 1, Removed: 1}) || e.images != 2 {
		t.Fatalf("third run: %+v, %d embedded", st, e.images)
	}
	loaded, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Len() != 3 || loaded.Entries[1].Path != "b.png" || loaded.Vector(1)[3] != ix.Vector(1)[3] {
		t.Errorf("reloaded: %+v", loaded.Entries)
	}
	if v := loaded.Vector(1); math.Abs(float64(v[3]/v[1])-9.0/65536) > 1e-6 { // width 9 reached the embedder
		t.Errorf("b.png was not re-embedded: %v", loaded.Vector(1))
	}

	// Another model: everything again.
	e = &fakeEmbedder{}
	if _, st, err = build(t, root, out, e, "m2"); err != nil || e.images != 3 || st.Embedded != 3 {
		t.Fatalf("new model: %+v %v, %d embedded", st, err, e.images)
	}
	// No temporary files are left next to the index.
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Errorf("files next to the index: %v", ents)
	}
}

// An interrupted run (cancelled, or the embedder failing) leaves a valid
// partial index that the next run completes without redoing finished work.
func TestBuildResume(t *testing.T) {
	root, out := t.TempDir(), filepath.Join(t.TempDir(), "photos.idx")
	for i := 0; i < 10; i++ {
		writePNG(t, filepath.Join(root, string(rune('a'+i))+".png"), 2+i, 2, color.RGBA{uint8(20 * i), 0, 0, 255})
	}
	e := &fakeEmbedder{failAfter: 4}
	_, _, err := Build(context.Background(), BuildOptions{Root: root, Out: out, Fingerprint: "m", Dim: 4, Batch: 2}, e.embed)
	if err == nil || !strings.Contains(err.Error(), "device lost") {
		t.Fatalf("failing embedder: %v", err)
	}
	partial, err := Load(out)
	if err != nil || partial.Len() != 4 {
		t.Fatalf("partial index after failure: %v, %d entries", err, partial.Len())
	}

	ctx, cancel := context.WithCancel(context.Background())
	e = &fakeEmbedder{}
	embed := func(imgs []image.Image) ([]float32, error) {
		v, err := e.embed(imgs)
		if e.images >= 2 {
			cancel()
		}
		return v, err
	}
	_, _, err = Build(ctx, BuildOptions{Root: root, Out: out, Fingerprint: "m", Dim: 4, Batch: 2}, embed)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("cancelled run: %v", err)
	}
	if partial, err = Load(out); err != nil || partial.Len() != 6 {
		t.Fatalf("partial index after cancel: %v, %d entries", err, partial.Len())
	}
	e = &fakeEmbedder{}
	ix, st, err := Build(context.Background(), BuildOptions{Root: root, Out: out, Fingerprint: "m", Dim: 4, Batch: 2}, e.embed)
	if err != nil || ix.Len() != 10 || e.images != 4 || st.Reused != 6 {
		t.Fatalf("resumed: %v, %d entries, %d embedded, %+v", err, ix.Len(), e.images, st)
	}
}

// Search ranks by dot product, best first, ties to the lower index, and
// files that are not indexes (or are truncated) are refused.
func TestSearchAndCorruptFiles(t *testing.T) {
	ix := &Index{Header: Header{Root: "/photos", Dim: 2, Entries: []Entry{{Path: "a"}, {Path: "b"}, {Path: "c"}, {Path: "d"}}},
		Vectors: []float32{1, 0, 0, 1, 0.6, 0.8, 1, 0}}
	hits := ix.Search([]float32{1, 0}, 3)
	if len(hits) != 3 || hits[0] != (Hit{0, 1}) || hits[1] != (Hit{3, 1}) || hits[2].I != 2 {
		t.Errorf("hits %+v", hits)
	}
	if len(ix.Search([]float32{1, 0}, 10)) != 4 || ix.Search([]float32{1}, 3) != nil {
		t.Error("k beyond the index or a query of the wrong width")
	}
	p := filepath.Join(t.TempDir(), "x.idx")
	if err := ix.Write(p); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p)
	if err != nil || back.Len() != 4 || back.Vector(2)[1] != 0.8 || back.AbsPath(1) != filepath.Join("/photos", "b") {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	raw, _ := os.ReadFile(p)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("NOTANIDX"), raw[8:]...),
		"truncated": raw[:len(raw)-3],
		"header":    raw[:20],
	} {
		q := filepath.Join(t.TempDir(), name)
		os.WriteFile(q, b, 0o644)
		if _, err := Load(q); err == nil || !strings.Contains(err.Error(), q) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := &Index{Header: Header{Dim: 1, Entries: []Entry{{Path: "../etc/passwd"}}}, Vectors: []float32{1}}
	if err := bad.Write(filepath.Join(t.TempDir(), "bad.idx")); err == nil {
		t.Error("an entry outside the root was written")
	}
}
