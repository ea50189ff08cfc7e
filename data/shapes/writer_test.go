package shapes

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"blip/data/preprocess"
)

// dirDigest hashes every file of dir with its path.
func dirDigest(t *testing.T, dir string) (string, int) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d\n", rel, len(data))
		h.Write(data)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), len(paths)
}

func writeDataset(t *testing.T, c Config, opt WriteOptions) string {
	t.Helper()
	d, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Write(dir, d, opt); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Same settings, same bytes (whatever the number of workers); another
// seed, other bytes.
func TestDeterminism(t *testing.T) {
	c := testConfig()
	c.N = 60
	a, n := dirDigest(t, writeDataset(t, c, WriteOptions{Workers: 1}))
	b, _ := dirDigest(t, writeDataset(t, c, WriteOptions{Workers: 3}))
	if a != b {
		t.Fatal("same seed wrote different files")
	}
	if n != 60+3*3+3 {
		t.Errorf("%d files written", n)
	}
	c.Seed++
	if other, _ := dirDigest(t, writeDataset(t, c, WriteOptions{})); other == a {
		t.Fatal("another seed wrote the same files")
	}
	// Changing the number of paraphrases leaves images and questions alone.
	c.Seed--
	d1, _ := Generate(c)
	c.Captions = 2
	d2, _ := Generate(c)
	for i := range d1.Scenes {
		s1, s2 := d1.Scenes[i], d2.Scenes[i]
		j1, _ := json.Marshal(s1.Objects)
		j2, _ := json.Marshal(s2.Objects)
		q1, _ := json.Marshal(s1.Questions)
		q2, _ := json.Marshal(s2.Questions)
		if !bytes.Equal(j1, j2) || !bytes.Equal(q1, q2) || s1.TextureSeed != s2.TextureSeed {
			t.Fatalf("image %d changed with the number of captions", s1.ImageID)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	c := testConfig()
	c.N = 30
	dir := writeDataset(t, c, WriteOptions{FlattenTrain: true})
	d, _ := Generate(c)

	var flat []FlatCaptionEntry
	if err := readJSON(filepath.Join(dir, "train.json"), &flat); err != nil {
		t.Fatal(err)
	}
	if want := len(d.Split(SplitTrain)) * c.Captions; len(flat) != want {
		t.Errorf("train.json: %d entries, want %d", len(flat), want)
	}
	var val []CaptionEntry
	if err := readJSON(filepath.Join(dir, "val.json"), &val); err != nil {
		t.Fatal(err)
	}
	if len(val) != len(d.Split(SplitVal)) || len(val[0].Caption) != c.Captions {
		t.Errorf("val.json: %d entries", len(val))
	}
	// The raw JSON has BLIP's field names.
	raw, _ := os.ReadFile(filepath.Join(dir, "vqa_test.json"))
	for _, f := range []string{`"question_id":`, `"question":`, `"answer":[`, `"image":"images/test/`, `"dataset":"vqa"`} {
		if !bytes.Contains(raw, []byte(f)) {
			t.Errorf("vqa_test.json lacks %s", f)
		}
	}
	var vqa []VQAEntry
	if err := readJSON(filepath.Join(dir, "vqa_test.json"), &vqa); err != nil {
		t.Fatal(err)
	}
	for _, e := range vqa {
		if len(e.Answer) != VQAAnswers || e.Answer[0] != e.Answer[9] {
			t.Fatalf("question %d: answers %q", e.QuestionID, e.Answer)
		}
	}
	var answers []string
	if err := readJSON(filepath.Join(dir, AnswerListFile), &answers); err != nil || len(answers) != len(AnswerList(c)) {
		t.Fatalf("answer list: %v, %d answers", err, len(answers))
	}
	// Ground truth reads back, questions included.
	for _, split := range Splits() {
		scenes, err := LoadScenes(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		want := d.Split(split)
		if len(scenes) != len(want) {
			t.Fatalf("%s: %d scenes, want %d", split, len(scenes), len(want))
		}
		for i := range scenes {
			a, _ := json.Marshal(scenes[i])
			b, _ := json.Marshal(want[i])
			if !bytes.Equal(a, b) || len(scenes[i].Questions) != len(want[i].Questions) {
				t.Fatalf("%s scene %d reads back different", split, i)
			}
		}
	}
	got, err := LoadConfig(dir)
	if err != nil || got.Seed != c.Seed || len(got.Shapes) != len(allShapes) {
		t.Fatalf("LoadConfig: %+v, %v", got, err)
	}
	// Images decode with blip's own loader, at the right size, and the
	// pixels re-render from the ground truth.
	s := d.Scenes[0]
	img, err := preprocess.Load(filepath.Join(dir, s.Image))
	if err != nil {
		t.Fatal(err)
	}
	if img.W != c.Size || img.H != c.Size {
		t.Fatalf("image %dx%d", img.W, img.H)
	}
	again, _ := Render(&s, c.Supersample)
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; x++ {
			r, g, b := img.RGBAt(x, y)
			i := again.PixOffset(x, y)
			if r != again.Pix[i] || g != again.Pix[i+1] || b != again.Pix[i+2] {
				t.Fatalf("pixel (%d,%d) differs after a PNG round trip", x, y)
			}
		}
	}
	// No temporary file is left behind.
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left", p)
		}
		return nil
	})
}

func TestWriteErrors(t *testing.T) {
	if err := Write(t.TempDir(), &Dataset{}, WriteOptions{}); err == nil {
		t.Error("empty dataset written")
	}
	d := testDataset(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if err := Write(filepath.Join(file, "sub"), d, WriteOptions{}); err == nil {
		t.Error("writing under a file succeeded")
	}
}
